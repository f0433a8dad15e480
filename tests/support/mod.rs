//! Support code shared by the black-box tests, one module: mounted with `mod support;` by each test file that needs it.
#![allow(dead_code, unused_imports)]

pub mod common;
pub mod fake_kube;
pub mod fake_pagerduty;
pub mod fake_slack;
pub mod faults;
pub mod kube_kit;
pub mod scenario;
pub mod slack_kit;
pub mod spawned;
pub mod tcp_proxy;
pub mod test_tls;
pub mod webdriver;
