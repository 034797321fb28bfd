//! The Helm chart `charts/mcp-gitops`, checked offline: `helm lint --strict`, `helm template` for
//! several value sets, every rendered manifest validated against Kubernetes 1.33's schemas
//! (`kubernetes-validate --strict`), and the RBAC and security settings asserted.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::common::k8s::{Tools, chart, objects, of_kind, one, strings};

/// The API group of the three custom resources, as the chart's RBAC names it.
const GROUP: &str = "gitops.mcp-gitops.dev";
const KINDS: [&str; 3] = ["contextforgegateways", "gatewayconfigs", "gatewaybackups"];

/// The value sets under tests/k8s/values/ (defaults: none).
const HA: &str = "tests/k8s/values/ha.yaml";
const CLUSTER: &str = "tests/k8s/values/cluster.yaml";
const CUSTOM: &str = "tests/k8s/values/custom.yaml";

/// Render, validate every manifest with kubernetes-validate, and parse.
fn render(tools: &Tools, values: &[&str]) -> Vec<Value> {
    let yaml = tools
        .template(values, &[])
        .unwrap_or_else(|e| panic!("helm template {values:?} failed:\n{e}"));
    tools.assert_valid(&format!("the chart rendered with {values:?}"), &yaml);
    objects(&yaml)
}

fn kinds(objs: &[Value]) -> BTreeSet<String> {
    objs.iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// Which verbs each (apiGroup, resource) may have: everything else is refused.
fn allowed(leader_election: bool) -> BTreeMap<(String, String), BTreeSet<&'static str>> {
    let mut m = BTreeMap::new();
    let mut put = |g: &str, r: &str, verbs: &[&'static str]| {
        m.insert(
            (g.to_owned(), r.to_owned()),
            verbs.iter().copied().collect(),
        );
    };
    for k in KINDS {
        put(GROUP, k, &["get", "list", "watch", "patch"]);
        put(GROUP, &format!("{k}/status"), &["get", "patch"]);
        put(GROUP, &format!("{k}/finalizers"), &["update"]);
    }
    put("", "secrets", &["get", "list", "watch"]);
    // Written only for long inventories (`<config>-inventory`, owned by the config).
    put(
        "",
        "configmaps",
        &["create", "delete", "get", "list", "patch", "watch"],
    );
    put("events.k8s.io", "events", &["create", "patch"]);
    if leader_election {
        let lease = &["create", "get", "patch"];
        put("coordination.k8s.io", "leases", lease);
    }
    m
}

/// Every granted (group, resource) → verbs, over all roles rendered.
fn granted(objs: &[Value]) -> BTreeMap<(String, String), BTreeSet<String>> {
    let mut g: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for role in of_kind(objs, "Role")
        .into_iter()
        .chain(of_kind(objs, "ClusterRole"))
    {
        let name = role["metadata"]["name"].as_str().unwrap();
        for rule in role["rules"].as_array().expect("rules") {
            assert!(rule.get("nonResourceURLs").is_none(), "{name}: {rule}");
            let verbs = strings(rule, "/verbs");
            let groups = strings(rule, "/apiGroups");
            let resources = strings(rule, "/resources");
            for list in [&verbs, &groups, &resources] {
                assert!(
                    !list.iter().any(|s| s.contains('*')),
                    "wildcard in {name}: {rule}"
                );
                assert!(!list.is_empty(), "empty list in {name}: {rule}");
            }
            for grp in &groups {
                for res in &resources {
                    let e = g.entry((grp.clone(), res.clone())).or_default();
                    e.extend(verbs.iter().cloned());
                }
            }
        }
    }
    g
}

/// Least privilege: nothing outside the allowed table, and everything the controller needs.
fn assert_rbac(objs: &[Value], leader_election: bool, cluster_wide: bool) {
    let allowed = allowed(leader_election);
    let granted = granted(objs);
    for (key, verbs) in &granted {
        let ok = allowed
            .get(key)
            .unwrap_or_else(|| panic!("{key:?} granted, but not needed: {verbs:?}"));
        for v in verbs {
            assert!(ok.contains(v.as_str()), "{key:?} granted the verb {v}");
        }
    }
    for k in KINDS {
        for res in [
            k.to_owned(),
            format!("{k}/status"),
            format!("{k}/finalizers"),
        ] {
            assert!(
                granted.contains_key(&(GROUP.into(), res.clone())),
                "{res} not granted"
            );
        }
    }
    let secrets = &granted[&("".into(), "secrets".into())];
    assert_eq!(secrets.iter().collect::<Vec<_>>(), ["get", "list", "watch"]);
    let leases = granted.contains_key(&("coordination.k8s.io".into(), "leases".into()));
    assert_eq!(
        leases, leader_election,
        "Leases granted iff leader election is on"
    );

    let (main_kind, other_kind) = if cluster_wide {
        ("ClusterRole", "Role")
    } else {
        ("Role", "ClusterRole")
    };
    let main: Vec<_> = of_kind(objs, main_kind)
        .into_iter()
        .filter(|r| strings(r, "/rules/0/apiGroups") == [GROUP])
        .collect();
    assert_eq!(main.len(), 1, "one {main_kind} for the custom resources");
    for r in of_kind(objs, other_kind) {
        assert!(
            strings(r, "/rules/0/apiGroups") != [GROUP],
            "the custom resources are granted by a {other_kind} too"
        );
    }
    assert!(of_kind(objs, "ClusterRoleBinding").is_empty() || cluster_wide);
    // A lease grant is always namespaced, even when watching the whole cluster.
    for r in of_kind(objs, "ClusterRole") {
        assert!(!strings(r, "/rules/0/apiGroups").contains(&"coordination.k8s.io".into()));
    }
    // Every binding refers to a rendered role and to the Deployment's service account.
    let sa = one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"].clone();
    for b in of_kind(objs, "RoleBinding")
        .into_iter()
        .chain(of_kind(objs, "ClusterRoleBinding"))
    {
        let role = &b["roleRef"];
        assert!(
            objs.iter()
                .any(|o| o["kind"] == role["kind"] && o["metadata"]["name"] == role["name"]),
            "binding to a role not rendered: {role}"
        );
        assert_eq!(b["subjects"][0]["name"], sa);
        assert_eq!(b["subjects"][0]["namespace"], "ops");
    }
}

/// Non-root, read-only root filesystem, no capabilities, seccomp, probes and resources.
fn assert_hardened(objs: &[Value]) {
    let pod = &one(objs, "Deployment")["spec"]["template"]["spec"];
    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], true);
    assert_eq!(psc["runAsUser"], 65532);
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");
    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["capabilities"], json!({"drop": ["ALL"]}));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert!(pod.get("hostNetwork").is_none() && pod.get("hostPID").is_none());
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["args"][0], "controller");
    // The read-only root needs writable scratch space, and only there.
    let mounts: BTreeSet<_> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["mountPath"].as_str().unwrap())
        .collect();
    assert_eq!(mounts, BTreeSet::from(["/tmp", "/var/lib/mcp-gitops"]));
    for v in pod["volumes"].as_array().unwrap() {
        assert!(v.get("emptyDir").is_some(), "only emptyDir volumes: {v}");
    }
}

fn args(objs: &[Value]) -> Vec<String> {
    strings(
        one(objs, "Deployment"),
        "/spec/template/spec/containers/0/args",
    )
}

#[test]
fn lint_strict_passes() {
    let tools = Tools::new();
    let chart = chart();
    for values in [
        &[][..],
        &["--values", HA],
        &["--values", CLUSTER],
        &["--values", CUSTOM],
    ] {
        let mut a = vec!["lint", "--strict", chart.to_str().unwrap()];
        a.extend_from_slice(values);
        let run = tools.helm(&a);
        assert!(
            run.ok,
            "helm lint --strict {values:?}:\n{}{}",
            run.stdout, run.stderr
        );
        assert!(run.stdout.contains("0 chart(s) failed"), "{}", run.stdout);
    }
}

#[test]
fn defaults_are_namespaced_single_replica_without_leases() {
    let tools = Tools::new();
    let objs = render(&tools, &[]);
    assert_eq!(
        kinds(&objs),
        [
            "Deployment",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount"
        ]
        .map(String::from)
        .into()
    );
    assert_rbac(&objs, false, false);
    assert_hardened(&objs);
    let d = one(&objs, "Deployment");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        args(&objs),
        [
            "controller",
            "--metrics-listen=0.0.0.0:9090",
            "--namespace=ops"
        ]
    );
    let svc = one(&objs, "Service");
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(
        svc["spec"]["selector"],
        d["spec"]["selector"]["matchLabels"]
    );
    for o in &objs {
        assert_eq!(o["metadata"]["namespace"], "ops", "{}", o["kind"]);
    }
}

#[test]
fn high_availability_elects_a_leader_with_a_pdb_and_a_service_monitor() {
    let tools = Tools::new();
    let objs = render(&tools, &[HA]);
    assert_rbac(&objs, true, false);
    assert_hardened(&objs);
    let d = one(&objs, "Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    let a = args(&objs);
    for want in [
        "--leader-elect",
        "--lease-name=rel-mcp-gitops-leader",
        "--lease-namespace=ops",
        "--lease-duration=20",
    ] {
        assert!(a.contains(&want.to_owned()), "{want} missing from {a:?}");
    }
    let lease_rule = of_kind(&objs, "Role")
        .into_iter()
        .flat_map(|r| r["rules"].as_array().unwrap())
        .find(|r| r["resourceNames"].is_array())
        .expect("a rule limited to the lease's name");
    assert_eq!(
        strings(lease_rule, "/resourceNames"),
        ["rel-mcp-gitops-leader"]
    );
    let pdb = one(&objs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        d["spec"]["selector"]["matchLabels"]
    );
    let sm = one(&objs, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
}

#[test]
fn cluster_wide_uses_a_cluster_role() {
    let tools = Tools::new();
    let objs = render(&tools, &[CLUSTER]);
    assert_rbac(&objs, false, true);
    assert_hardened(&objs);
    assert!(of_kind(&objs, "Role").is_empty());
    let binding = one(&objs, "ClusterRoleBinding");
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert!(
        one(&objs, "ClusterRole")["metadata"]
            .get("namespace")
            .is_none()
    );
    let a = args(&objs);
    assert_eq!(a, ["controller", "--metrics-listen=0.0.0.0:9090"]);
    assert!(!a.iter().any(|s| s.starts_with("--namespace")), "{a:?}");
}

#[test]
fn custom_values_are_honoured() {
    let tools = Tools::new();
    let objs = render(&tools, &[CUSTOM]);
    assert_rbac(&objs, true, false);
    assert_hardened(&objs);
    // No ServiceAccount of our own; no PDB with one replica even though it is enabled.
    assert!(of_kind(&objs, "ServiceAccount").is_empty());
    assert!(of_kind(&objs, "PodDisruptionBudget").is_empty());
    let d = one(&objs, "Deployment");
    assert_eq!(d["metadata"]["name"], "cf-gitops");
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "platform-gitops");
    let c = &pod["containers"][0];
    assert_eq!(
        c["image"],
        "registry.internal.example/platform/mcp-gitops@sha256:\
         0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["ports"][0]["containerPort"], 9100);
    assert_eq!(c["resources"]["limits"]["memory"], "512Mi");
    assert_eq!(pod["imagePullSecrets"][0]["name"], "regcred");
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["tolerations"][0]["key"], "dedicated");
    let a = args(&objs);
    assert!(
        a.contains(&"--lease-name=cf-gitops-lock".to_owned()),
        "{a:?}"
    );
    assert_eq!(a.last().unwrap(), "--state-dir=/var/lib/mcp-gitops/state");
    let env = c["env"].as_array().unwrap();
    assert!(env.contains(&json!({"name": "MCP_GITOPS_LOG", "value": "mcp_gitops=debug"})));
    assert!(env.contains(&json!({"name": "TZ", "value": "UTC"})));
    let svc = one(&objs, "Service");
    assert_eq!(svc["spec"]["ports"][0]["port"], 9100);
    assert_eq!(
        svc["metadata"]["annotations"]["prometheus.io/scrape"],
        "true"
    );
}

#[test]
fn bad_values_are_refused_before_rendering() {
    let tools = Tools::new();
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "replicas=2"], "replicas"),
        (&["--set", "image.tags=latest"], "tags"),
        (&["--set-string", "replicaCount=two"], "replicaCount"),
        (&["--set", "replicaCount=2"], "leaderElection"),
        (&["--set", "service.type=External"], "service"),
        (
            &["--set", "leaderElection.leaseDurationSeconds=1"],
            "leaseDurationSeconds",
        ),
        (&["--set", "controller.port=80"], "port"),
    ];
    for (extra, needle) in cases {
        let err = tools
            .template(&[], extra)
            .err()
            .unwrap_or_else(|| panic!("{extra:?} was accepted"));
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
}

#[test]
fn the_validator_can_fail() {
    // The check above would be hollow if kubernetes-validate accepted anything: a rendered
    // Deployment with a string replica count and an unknown field must be refused.
    let tools = Tools::new();
    let yaml = tools.template(&[], &[]).unwrap();
    let mut objs = objects(&yaml);
    let d = objs.iter_mut().find(|o| o["kind"] == "Deployment").unwrap();
    d["spec"]["replicas"] = json!("one");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, serde_json::to_string(d).unwrap()).unwrap();
    let run = tools.validate(&[&file]);
    assert!(!run.ok, "accepted: {}{}", run.stdout, run.stderr);
    assert!(format!("{}{}", run.stdout, run.stderr).contains("replicas"));

    let d = objs.iter_mut().find(|o| o["kind"] == "Deployment").unwrap();
    d["spec"]["replicas"] = json!(1);
    d["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFs"] =
        json!(true);
    std::fs::write(&file, serde_json::to_string(d).unwrap()).unwrap();
    let run = tools.validate(&[&file]);
    assert!(
        !run.ok,
        "an unknown field was accepted: {}{}",
        run.stdout, run.stderr
    );
}

#[test]
fn the_binary_accepts_the_rendered_arguments() {
    // The chart and `mcp-gitops controller` agree on every flag: clap refuses an unknown flag (or
    // a bad value) before it gets to `--help`, which otherwise prints the usage and exits 0.
    let tools = Tools::new();
    for values in [&[][..], &[HA], &[CLUSTER], &[CUSTOM]] {
        let objs = render(&tools, values);
        let pod = &one(&objs, "Deployment")["spec"]["template"]["spec"];
        let mut a = args(&objs);
        a.push("--help".into());
        let out = assert_cmd::Command::cargo_bin("mcp-gitops")
            .unwrap()
            .args(&a)
            .env_clear()
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{values:?}: mcp-gitops {a:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("--metrics-listen"));
        // The port probed and exposed is the one the controller listens on.
        let port = pod["containers"][0]["ports"][0]["containerPort"]
            .as_u64()
            .unwrap();
        assert!(a[1].ends_with(&format!(":{port}")), "{a:?} vs {port}");
    }
}
