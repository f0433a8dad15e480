//! The platform's own service accounts: Argo CD, monitoring, certificates, secret syncing, backup, logging, cluster add-ons, security tools, cron jobs and batch.

use super::catalog::{Act, *};
use super::services::{spec, team_of, watch, Duty, Job, Perm, Scope, Spec, CG};

/// The platform's own service accounts, most important first.
pub(super) fn platform(days: i64) -> Vec<Spec> {
    use Scope::*;
    let (p, s, sec) = (team_of("platform"), team_of("sre"), team_of("security"));
    let mut v = Vec::new();
    let mut argo = spec(
        "argocd",
        "argocd-application-controller",
        p,
        Perm::Admin,
        "argocd-application-controller/v2.12.4+27d1e64 linux/amd64",
        1,
        "argocd",
        watch(
            &[
                &PODS,
                &DEPLOYMENTS,
                &REPLICASETS,
                &SERVICES,
                &CONFIGMAPS,
                &SECRETS,
                &INGRESSES,
                &STATEFULSETS,
                &JOBS,
                &CRONJOBS,
                &SERVICEACCOUNTS,
                &ROLEBINDINGS,
                &HPAS,
                &PDBS,
                &NETWORKPOLICIES,
                &ENDPOINTS,
            ],
            Cluster,
        ),
    );
    argo.duties.push(Duty::Sync);
    argo.agents.push((
        9.min(days - 1),
        "argocd-application-controller/v2.12.6+4dab5bd linux/amd64".into(),
    ));
    v.push(argo);
    let mut server = spec(
        "argocd",
        "argocd-server",
        p,
        Perm::Reader { secrets: false },
        "argocd-server/v2.12.4+27d1e64 linux/amd64",
        2,
        "argocd",
        watch(&[&APPLICATIONS, &APPPROJECTS, &SECRETS, &CONFIGMAPS], Own),
    );
    server.duties.push(Duty::Ui(25.0));
    server.agents.push((
        9.min(days - 1),
        "argocd-server/v2.12.6+4dab5bd linux/amd64".into(),
    ));
    v.push(server);
    let mut prom = spec(
        "monitoring",
        "prometheus",
        s,
        Perm::Wide(&[
            "pods",
            "endpoints",
            "services",
            "nodes",
            "endpointslices",
            "ingresses",
        ]),
        "Prometheus/2.54.1",
        2,
        "prometheus",
        watch(
            &[&PODS, &ENDPOINTS, &SERVICES, &NODES, &ENDPOINTSLICES],
            Cluster,
        ),
    );
    prom.duties.push(Duty::Watch(
        &ENDPOINTS,
        Some(
            [
                "payments",
                "checkout",
                "search",
                "data",
                "mobile-api",
                "identity",
                "growth",
                "ingress-nginx",
                "kube-system",
                "monitoring",
                "logging",
                "argocd",
            ]
            .map(String::from)
            .to_vec(),
        ),
    ));
    prom.agents
        .push((15.min(days - 1), "Prometheus/2.55.0".into()));
    v.push(prom);
    v.push(spec(
        "monitoring",
        "kube-state-metrics",
        s,
        Perm::Reader { secrets: true },
        &format!("kube-state-metrics/v2.13.0 {CG}"),
        1,
        "monitoring",
        watch(
            &[
                &PODS,
                &DEPLOYMENTS,
                &REPLICASETS,
                &STATEFULSETS,
                &DAEMONSETS,
                &JOBS,
                &CRONJOBS,
                &SERVICES,
                &ENDPOINTS,
                &CONFIGMAPS,
                &SECRETS,
                &NAMESPACES,
                &NODES,
                &PVCS,
                &INGRESSES,
                &HPAS,
            ],
            Cluster,
        ),
    ));
    let mut po = spec(
        "monitoring",
        "prometheus-operator",
        s,
        Perm::Wide(&[
            "servicemonitors",
            "podmonitors",
            "prometheusrules",
            "namespaces",
        ]),
        "PrometheusOperator/0.77.1",
        1,
        "monitoring",
        watch(&[&SERVICEMONITORS, &PODMONITORS, &PROMRULES], Cluster),
    );
    po.duties
        .extend(watch(&[&STATEFULSETS, &SECRETS, &CONFIGMAPS], Own));
    po.duties.push(Duty::Reconcile(&SECRETS, 3.0, Own));
    v.push(po);
    v.push(spec(
        "monitoring",
        "grafana",
        s,
        Perm::Wide(&["configmaps", "secrets"]),
        "OpenAPI-Generator/30.1.0/python",
        1,
        "monitoring",
        watch(&[&CONFIGMAPS, &SECRETS], Cluster),
    ));
    let mut cm = spec(
        "cert-manager",
        "cert-manager",
        p,
        Perm::Wide(&[
            "certificates",
            "certificaterequests",
            "issuers",
            "clusterissuers",
            "secrets",
            "ingresses",
            "events",
        ]),
        &format!("cert-manager-controller/v1.15.3 {CG}"),
        1,
        "cert-manager",
        watch(
            &[
                &CERTIFICATES,
                &CERTREQUESTS,
                &ISSUERS,
                &CLUSTERISSUERS,
                &SECRETS,
                &INGRESSES,
            ],
            Cluster,
        ),
    );
    cm.duties.extend([
        Duty::Lease(180),
        Duty::Reconcile(&SECRETS, 0.8, Team),
        Duty::Reconcile(&CERTIFICATES, 1.5, Team),
    ]);
    v.push(cm);
    let mut ca = spec(
        "cert-manager",
        "cert-manager-cainjector",
        p,
        Perm::Wide(&[
            "validatingwebhookconfigurations",
            "mutatingwebhookconfigurations",
            "customresourcedefinitions",
            "apiservices",
            "certificates",
            "secrets",
        ]),
        &format!("cert-manager-cainjector/v1.15.3 {CG}"),
        1,
        "cert-manager",
        watch(
            &[&VWCS, &MWCS, &CRDS, &APISERVICES, &CERTIFICATES, &SECRETS],
            Cluster,
        ),
    );
    ca.duties.push(Duty::Lease(180));
    v.push(ca);
    let mut eso = spec(
        "external-secrets",
        "external-secrets",
        p,
        Perm::Wide(&[
            "externalsecrets",
            "secretstores",
            "clustersecretstores",
            "secrets",
            "events",
        ]),
        &format!("external-secrets/v0.0.0 {CG}"),
        1,
        "external-secrets",
        watch(
            &[
                &EXTERNALSECRETS,
                &SECRETSTORES,
                &CLUSTERSECRETSTORES,
                &SECRETS,
            ],
            Cluster,
        ),
    );
    eso.duties.extend([Duty::Lease(180), Duty::Refresh]);
    v.push(eso);
    let mut velero = spec(
        "velero",
        "velero",
        p,
        Perm::Admin,
        "velero-server/v1.14.1 (linux/amd64) 8afe3cea",
        1,
        "velero",
        watch(&[&BACKUPS, &SCHEDULES], Own),
    );
    velero.duties.push(Duty::Backup);
    v.push(velero);
    v.push(spec(
        "logging",
        "fluent-bit",
        s,
        Perm::Wide(&["pods", "namespaces"]),
        "fluent-bit/3.1.9",
        40,
        "logging",
        vec![Duty::Follow(90.0, false)],
    ));
    let mut ca2 = spec(
        "kube-system",
        "cluster-autoscaler",
        p,
        Perm::Wide(&[
            "nodes",
            "pods",
            "namespaces",
            "services",
            "replicasets",
            "statefulsets",
            "daemonsets",
            "deployments",
            "poddisruptionbudgets",
            "persistentvolumeclaims",
            "configmaps",
            "events",
        ]),
        &format!("cluster-autoscaler/v1.30.2 {CG}"),
        1,
        "kube-system",
        vec![
            Duty::Poll(
                vec![
                    Act::new("list", &NODES, None, None),
                    Act::new("list", &PODS, None, None),
                ],
                120,
            ),
            Duty::Lease(180),
        ],
    );
    ca2.duties.push(Duty::Reconcile(&NODES, 0.5, Cluster));
    v.push(ca2);
    v.push(spec(
        "kube-system",
        "coredns",
        p,
        Perm::Wide(&["endpointslices", "services", "namespaces", "pods"]),
        &format!("coredns/v0.0.0 {CG}"),
        2,
        "kube-system",
        watch(&[&ENDPOINTSLICES, &SERVICES, &NAMESPACES], Cluster),
    ));
    v.push(spec(
        "kube-system",
        "metrics-server",
        p,
        Perm::Wide(&["nodes", "pods", "namespaces", "configmaps"]),
        &format!("metrics-server/v0.7.2 {CG}"),
        1,
        "kube-system",
        watch(&[&NODES, &PODS], Cluster),
    ));
    let mut lb = spec(
        "kube-system",
        "aws-load-balancer-controller",
        p,
        Perm::Wide(&[
            "ingresses",
            "services",
            "targetgroupbindings",
            "endpoints",
            "pods",
            "ingressclasses",
            "events",
        ]),
        &format!("aws-load-balancer-controller/v2.8.3 {CG}"),
        1,
        "kube-system",
        watch(
            &[
                &INGRESSES,
                &SERVICES,
                &TGBS,
                &ENDPOINTS,
                &PODS,
                &INGRESSCLASSES,
            ],
            Cluster,
        ),
    );
    lb.duties.push(Duty::Lease(180));
    v.push(lb);
    v.push(spec(
        "kube-system",
        "external-dns",
        p,
        Perm::Reader { secrets: false },
        "external-dns/v0.14.2",
        1,
        "kube-system",
        vec![Duty::Poll(
            vec![
                Act::new("list", &SERVICES, None, None),
                Act::new("list", &INGRESSES, None, None),
            ],
            180,
        )],
    ));
    let mut ing = spec("ingress-nginx", "ingress-nginx", p, Perm::Wide(&["ingresses", "services", "endpointslices", "secrets", "configmaps", "ingressclasses", "events", "pods"]), "nginx-ingress-controller/v1.11.2 (linux/amd64) ingress-nginx/46e76e5916813cfca2a9b0bfdc34b69a0000f6b9", 2, "ingress-nginx", watch(&[&INGRESSES, &SERVICES, &ENDPOINTSLICES, &SECRETS, &CONFIGMAPS, &INGRESSCLASSES], Cluster));
    ing.duties
        .extend([Duty::Lease(180), Duty::Reconcile(&INGRESSES, 2.0, Cluster)]);
    ing.agents.push((20.min(days - 1), "nginx-ingress-controller/v1.11.3 (linux/amd64) ingress-nginx/f6e67ea3d6e0a0ec6fc3ef3b6d12e8d9f4f3ebd4".into()));
    v.push(ing);
    let mut ky = spec(
        "security",
        "kyverno",
        sec,
        Perm::Wide(&[
            "clusterpolicies",
            "namespaces",
            "policyreports",
            "pods",
            "deployments",
            "services",
            "configmaps",
            "events",
        ]),
        &format!("kyverno/v1.12.5 {CG}"),
        3,
        "security",
        watch(&[&CLUSTERPOLICIES, &NAMESPACES, &POLICYREPORTS], Cluster),
    );
    ky.duties.extend([
        Duty::Lease(180),
        Duty::Reconcile(&POLICYREPORTS, 8.0, Team),
        Duty::Poll(
            vec![
                Act::new("list", &PODS, None, None),
                Act::new("list", &DEPLOYMENTS, None, None),
                Act::new("list", &SERVICES, None, None),
            ],
            3600,
        ),
    ]);
    v.push(ky);
    let mut tr = spec(
        "security",
        "trivy-operator",
        sec,
        Perm::Wide(&[
            "pods",
            "replicasets",
            "jobs",
            "secrets",
            "vulnerabilityreports",
            "events",
        ]),
        &format!("trivy-operator/v0.22.0 {CG}"),
        1,
        "security",
        watch(&[&PODS, &REPLICASETS, &JOBS], Cluster),
    );
    tr.duties
        .extend([Duty::Lease(180), Duty::Follow(12.0, true)]);
    v.push(tr);
    v.push(spec(
        "vault",
        "vault",
        sec,
        Perm::Wide(&["tokenreviews"]),
        "Go-http-client/2.0",
        3,
        "vault",
        vec![Duty::Reviews(25.0)],
    ));
    let mut appset = spec(
        "argocd",
        "argocd-applicationset-controller",
        p,
        Perm::Wide(&["applicationsets", "applications", "secrets", "events"]),
        "argocd-applicationset-controller/v2.12.4+27d1e64 linux/amd64",
        1,
        "argocd",
        watch(&[&APPSETS, &APPLICATIONS], Own),
    );
    appset.duties.push(Duty::Lease(180));
    v.push(appset);
    v.push(spec(
        "platform-tools",
        "cleanup",
        p,
        Perm::Wide(&["pods", "jobs"]),
        "kubectl/v1.30.5 (linux/amd64) kubernetes/74e84a9",
        1,
        "cron",
        vec![Duty::Cron(Job::Cleanup, 1440, 195)],
    ));
    v.push(spec(
        "sre-tools",
        "healthcheck",
        s,
        Perm::Reader { secrets: false },
        "curl/8.5.0",
        1,
        "cron",
        vec![Duty::Cron(Job::Health, 5, 1)],
    ));
    v.push(spec(
        "security",
        "rbac-audit",
        sec,
        Perm::Reader { secrets: false },
        "python-requests/2.31.0",
        1,
        "cron",
        vec![Duty::Cron(Job::RbacAudit, 1440, 360)],
    ));
    let mut spark = spec(
        "spark",
        "spark-operator",
        team_of("data"),
        Perm::Own,
        &format!("spark-operator/v2.0.2 {CG}"),
        1,
        "operator",
        watch(&[&SPARKAPPS, &PODS], Own),
    );
    spark
        .duties
        .extend([Duty::Lease(180), Duty::Batch("spark".into())]);
    v.push(spark);
    v.push(spec(
        "airflow",
        "airflow-worker",
        team_of("data"),
        Perm::Wide(&["pods"]),
        "OpenAPI-Generator/29.0.0/python",
        2,
        "airflow",
        vec![Duty::Batch("data-pipelines".into())],
    ));
    v
}
