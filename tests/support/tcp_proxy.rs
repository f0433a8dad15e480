//! A TCP proxy on loopback that the fault tests own: it forwards to an upstream address and can be taken down (every connection reset, the port closed so new ones are refused) and brought back on the same port.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The proxy; forwarding stops when dropped.
pub struct TcpProxy {
    pub addr: SocketAddr,
    upstream: SocketAddr,
    up: Mutex<Option<Up>>,
}

/// While up: the accept loop and a token that ends every forwarded connection.
struct Up {
    accept: JoinHandle<()>,
    cut: CancellationToken,
}

fn bind(addr: SocketAddr) -> TcpListener {
    let s = TcpSocket::new_v4().unwrap();
    // Rebinding the same port right after closing it: allow TIME_WAIT leftovers.
    s.set_reuseaddr(true).unwrap();
    s.bind(addr).unwrap();
    s.listen(1024).unwrap()
}

impl TcpProxy {
    /// Listens on a free loopback port and forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> Arc<Self> {
        let listener = bind("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        let p = Arc::new(Self {
            addr,
            upstream,
            up: Mutex::new(None),
        });
        p.serve(listener);
        p
    }

    /// A free loopback port, for a server that must be told in advance where its proxy will listen.
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn serve(&self, listener: TcpListener) {
        let cut = CancellationToken::new();
        let upstream = self.upstream;
        let c = cut.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let c = c.clone();
                tokio::spawn(forward(client, upstream, c));
            }
        });
        *self.up.lock().unwrap() = Some(Up { accept, cut });
    }

    /// The broker "stops": established connections are reset and the port is closed (connection refused).
    pub async fn down(&self) {
        let Some(up) = self.up.lock().unwrap().take() else {
            return;
        };
        up.cut.cancel();
        up.accept.abort();
        let _ = up.accept.await;
    }

    /// The broker is back on the same address.
    pub fn up(&self) {
        if self.up.lock().unwrap().is_some() {
            return;
        }
        self.serve(bind(self.addr));
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(up) = self.up.lock().unwrap().take() {
            up.cut.cancel();
            up.accept.abort();
        }
    }
}

async fn forward(client: TcpStream, upstream: SocketAddr, cut: CancellationToken) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client, mut server) = (client, server);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = cut.cancelled() => {
            // As a process that dies: the peer sees a reset, not an orderly close.
            let _ = client.set_zero_linger();
        }
    }
}
