use std::path::Path;

use super::*;

fn vars(v: &str) -> Option<String> {
    match v {
        "HOOK_SECRET" => Some("s3cret-hook".into()),
        "REPO" => Some("/srv/git/config.git".into()),
        "JWT_SECRET_KEY" | "KEY" => Some("k3y".into()),
        _ => None,
    }
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("daemon.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_full_configuration_reads_with_its_defaults() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("envs/dev")).unwrap();
    let p = write(
        t.path(),
        r#"
listen: 0.0.0.0:9191
state_dir: state
webhook: {secret: {env: HOOK_SECRET}, rate_limit: 5, failure_limit: 3}
listener: {max_connections: 50, idle_timeout: 2m}
environments:
  - name: prod
    source: {git: {url: "${REPO}", branch: main, path: envs/prod}}
    gateway: {url: "http://gw:4444", user: admin@example.com, jwt_secret: {env: JWT_SECRET_KEY}}
    allowed_env: [WEATHER_HOST]
    interval: 90s
    mode: observe
    backup: {schedule: "0 * * * *", path: backups/prod.json}
  - name: dev
    source: {dir: envs/dev}
    backup:
      schedule: "@daily"
      path: dev.yaml
      git: {url: backups.git, branch: dev-backups}
"#,
    );
    let c = load(&p, &vars).unwrap();
    assert_eq!(c.listen.to_string(), "0.0.0.0:9191");
    assert_eq!(c.state_dir, t.path().join("state"));
    let w = c.webhook.as_ref().unwrap();
    assert_eq!((w.per_minute, w.failures_per_minute), (5, 3));
    assert_eq!(c.listener.max_connections, 50);
    assert_eq!(c.listener.idle_timeout, Duration::from_secs(120));
    assert_eq!(
        c.listener.header_timeout,
        super::listener::DEFAULT_HEADER_TIMEOUT
    );
    assert_eq!(
        w.secret.sign(b"x"),
        HookSecret::new("s3cret-hook").sign(b"x")
    );
    let [prod, dev] = &c.environments[..] else {
        panic!("two environments")
    };
    assert_eq!(prod.interval, Duration::from_secs(90));
    assert_eq!(prod.mode, Some(Mode::Observe));
    let SourceSpec::Git(g) = &prod.source else {
        panic!("git source")
    };
    assert_eq!(g.remote.url.to_string(), "/srv/git/config.git");
    assert_eq!((g.branch.as_str(), g.path.as_str()), ("main", "envs/prod"));
    let trust = prod.trust.as_ref().unwrap();
    assert_eq!(trust.connection.url, "http://gw:4444");
    assert_eq!(trust.allowed_env, ["WEATHER_HOST"]);
    assert_eq!(trust.secrets_dir, None);
    assert!(dev.trust.is_none(), "a directory names its own connection");
    let b = prod.backup.as_ref().unwrap();
    assert_eq!(
        b.remote.url, g.remote.url,
        "backups default to the source repository"
    );
    assert_eq!(b.branch, "main");
    assert_eq!(b.message_prefix, "backup prod");
    assert_eq!(b.push_attempts, 5);
    assert_eq!(dev.interval, DEFAULT_INTERVAL);
    assert!(matches!(&dev.source, SourceSpec::Dir(d) if d == &t.path().join("envs/dev")));
    let b = dev.backup.as_ref().unwrap();
    assert_eq!(
        b.remote.url.to_string(),
        t.path().join("backups.git").display().to_string(),
        "a local repository path is relative to the file"
    );
    assert_eq!(b.branch, "dev-backups");
    assert_eq!(
        format!("{w:?}"),
        "Webhook { secret: HookSecret(*****), per_minute: 5, failures_per_minute: 3 }"
    );
}

#[test]
fn every_problem_is_listed_with_its_pointer() {
    let t = tempfile::tempdir().unwrap();
    let p = write(
        t.path(),
        r#"
listen: localhost
webhook: {secret: {env: NOT_SET_ANYWHERE}, failure_limit: 0}
listener: {header_timeout: soon}
environments:
  - name: Prod
    source: {git: {url: /srv/config.git, path: envs/prod}}
    interval: soon
    backup: {schedule: "every hour", path: envs/prod/backup.json}
  - name: dev
    source: {dir: no/such/dir, git: {url: /srv/config.git}}
  - name: dev
    source: {dir: .}
    parallelism: 0
    backup: {schedule: "@hourly", path: ../outside.json}
  - name: staging
    source: {dir: .}
    backup: {schedule: "@hourly", path: b.json}
"#,
    );
    let err = load(&p, &vars).unwrap_err().to_string();
    let file = p.display().to_string();
    for want in [
        "/listen: 'localhost' is not an address:port",
        "/webhook/secret: the environment variable NOT_SET_ANYWHERE is not set",
        "/webhook/failure_limit: must be at least 1",
        "/listener/header_timeout: 'soon' is not a duration",
        "/environments/0/name: 'Prod' must be 1-63 characters",
        "/environments/0/interval: 'soon' is not a duration",
        "/environments/0/backup/schedule: 'every hour' is not a cron schedule",
        "/environments/0/backup/path: 'envs/prod/backup.json' is inside the environment's own source path 'envs/prod' on the same branch",
        "/environments/1/source: give exactly one of dir: PATH or git: {url, branch, path}",
        "/environments/2/name: 'dev' is used twice",
        "/environments/2/parallelism: must be at least 1",
        "/environments/2/backup/path: path '../outside.json': must stay inside the repository",
        "/environments/3/backup/git/url: is required when the source is a directory",
    ] {
        assert!(
            err.contains(&format!("{file}: {want}")),
            "missing {want:?} in\n{err}"
        );
    }
    assert!(
        err.contains(&format!(
            "{file}: /environments/0/gateway: is required for a Git source"
        )),
        "{err}"
    );
    assert!(err.starts_with(&format!("{file}: 15 problems")), "{err}");
}

#[test]
fn a_git_sources_connection_is_checked_here_with_files_inside_secrets_dir() {
    let t = tempfile::tempdir().unwrap();
    let secrets = t.path().join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    std::fs::write(secrets.join("prod-token"), "t").unwrap();
    std::os::unix::fs::symlink("/etc/hostname", secrets.join("host")).unwrap();
    let envs = |secrets_dir: &str| {
        format!(
            r#"{secrets_dir}
environments:
  - name: a
    source: {{git: {{url: /srv/c.git, path: a}}}}
    gateway: {{url: "http://gw:4444", token: {{file: prod-token}}, secret: {{env: KEY}}}}
  - name: b
    source: {{git: {{url: /srv/c.git, path: b}}}}
    gateway: {{url: "ftp://gw", token: {{file: ../outside}}, secret: {{env: NOT_SET}}, gateway_secret: {{env: KEY, file: x}}}}
  - name: c
    source: {{git: {{url: /srv/c.git, path: c}}}}
    gateway: {{url: "http://gw:4444", token: {{file: host}}}}
  - name: d
    source: {{git: {{url: /srv/c.git, path: d}}}}
    gateway: {{url: "http://gw:4444", user: admin@example.com}}
  - name: e
    source: {{dir: .}}
    gateway: {{url: "http://gw:4444", token: {{env: KEY}}}}
"#
        )
    };
    let p = write(t.path(), &envs("secrets_dir: secrets"));
    let err = load(&p, &vars).unwrap_err().to_string();
    let file = p.display().to_string();
    for want in [
        "/environments/1/gateway/url: ",
        "/environments/1/gateway/token: cannot read ",
        "/environments/1/gateway/secret: the environment variable NOT_SET is not set",
        "/environments/1/gateway/gateway_secret: give exactly one of env: VAR or file: PATH",
        "/environments/2/gateway/token: ",
        "/environments/3/gateway: give token, or user and jwt_secret",
        "/environments/4/gateway: only for Git sources",
    ] {
        assert!(
            err.contains(&format!("{file}: {want}")),
            "missing {want:?} in
{err}"
        );
    }
    assert!(err.contains("is outside"), "the symbolic link: {err}");
    assert!(err.starts_with(&format!("{file}: 7 problems")), "{err}");
    assert!(!err.contains("/environments/0/"), "{err}");

    // Without secrets_dir no file reference is taken.
    let p = write(t.path(), &envs(""));
    let err = load(&p, &vars).unwrap_err().to_string();
    assert!(
        err.contains(
            "/environments/0/gateway/token: prod-token: a file reference needs secrets_dir"
        ),
        "{err}"
    );
    let p = write(t.path(), &envs("secrets_dir: nowhere"));
    let err = load(&p, &vars).unwrap_err().to_string();
    assert!(err.contains("/secrets_dir: "), "{err}");
}

#[test]
fn shape_errors_name_the_field() {
    let t = tempfile::tempdir().unwrap();
    let cases = [
        (
            "environments:\n  - name: a\n    sourse: {dir: .}\n",
            "/environments/0/sourse: unknown field `sourse`",
        ),
        ("listen: x\n", "missing field `environments`"),
        (
            "environments:\n  - name: a\n    source: {dir: .}\n    mode: sometimes\n",
            "/environments/0/mode: unknown variant `sometimes`",
        ),
        (
            "environments:\n  - name: a\n    source: {git: {url: /r.git, auth: {token: abc}}}\n",
            "/environments/0/source/git/auth/token: unknown field `token`",
        ),
        ("environments: []\n", "/environments: lists no environment"),
        (
            "environments:\n  - name: a\n    source: {dir: '${NOPE}'}\n",
            "${NOPE} is not set",
        ),
    ];
    for (text, want) in cases {
        let p = write(t.path(), text);
        let err = load(&p, &vars).unwrap_err().to_string();
        assert!(err.contains(want), "{text:?}: want {want:?} in {err}");
    }
}

#[test]
fn the_example_configuration_reads() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/daemon.yaml");
    let lookup = |v: &str| {
        v.starts_with("MCP_GITOPS_WEBHOOK_SECRET")
            .then(|| "x".to_string())
            .or_else(|| v.ends_with("_SECRET_KEY").then(|| "k".into()))
            .or_else(|| v.ends_with("_AUTH_ENCRYPTION_SECRET").then(|| "k".into()))
            .or_else(|| v.ends_with("_GATEWAY_URL").then(|| "http://gw:4444".into()))
            .or_else(|| v.ends_with("_API_TOKEN").then(|| format!("{v}-0123456789")))
    };
    // `token_env` must name a variable that is set (checked through the process environment).
    let err = load(&example, &lookup).unwrap_err().to_string();
    // (secrets_dir, /run/secrets, must exist too: this host may or may not have it.)
    assert!(err.contains("BACKUP_GIT_TOKEN"), "{err}");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("token_env: BACKUP_GIT_TOKEN", "token_env: PATH");
    let t = tempfile::tempdir().unwrap();
    let text = text.replace("/run/secrets", &t.path().display().to_string());
    std::fs::write(t.path().join("prod-gateway-token"), "t").unwrap();
    std::fs::create_dir_all(t.path().join("envs/dev")).unwrap();
    let c = load(&write(t.path(), &text), &lookup).unwrap();
    let names: Vec<&str> = c.environments.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    let staging = c.environments[1].backup.as_ref().unwrap();
    assert_eq!(
        (staging.branch.as_str(), staging.path.as_str()),
        ("backups", "backups/staging.json")
    );
    assert_eq!(c.environments[2].mode, Some(Mode::Observe));
    let prod = c.environments[2].trust.as_ref().unwrap();
    assert_eq!(prod.connection.url, "http://gw:4444");
    assert_eq!(c.api.tokens.len(), 2);
    assert!(c.api.open_metrics && !c.api.open_status);
}

#[test]
fn the_api_section_reads_tokens_by_reference_and_lists_every_problem() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("envs/dev")).unwrap();
    std::fs::write(t.path().join("viewer.token"), "viewer-token-0123456789\n").unwrap();
    let lookup = |v: &str| match v {
        "CI_TOKEN" => Some("ci-token-0123456789abc".to_string()),
        "SHORT" => Some("short".to_string()),
        _ => vars(v),
    };
    let p = write(
        t.path(),
        r#"
api:
  tokens:
    - {name: ci, role: operator, token: {env: CI_TOKEN}}
    - {name: dash, role: viewer, token: {file: viewer.token}}
  body_limit: 1MB
  rate_limit: 30
  open_metrics: true
  compat_environment: dev
environments:
  - {name: dev, source: {dir: envs/dev}}
"#,
    );
    let c = load(&p, &lookup).unwrap();
    let a = &c.api;
    assert_eq!((a.body_limit, a.per_minute), (1 << 20, 30));
    assert!(a.open_metrics && !a.open_status);
    assert_eq!(a.compat_environment.as_deref(), Some("dev"));
    let caller = crate::core::access::authenticate(&a.tokens, "viewer-token-0123456789").unwrap();
    assert_eq!(
        (caller.name.as_str(), caller.role),
        ("dash", crate::core::access::Role::Viewer)
    );
    assert!(!format!("{c:?}").contains("ci-token-0123456789abc"));
    // Without an api section: no token, status and metrics closed.
    let p = write(
        t.path(),
        "environments:\n  - {name: dev, source: {dir: envs/dev}}\n",
    );
    let c = load(&p, &lookup).unwrap();
    assert!(c.api.tokens.is_empty() && !c.api.open_status && !c.api.open_metrics);

    let p = write(
        t.path(),
        r#"
api:
  tokens:
    - {name: ci, role: operator, token: {env: CI_TOKEN}}
    - {name: ci, role: admin, token: {env: CI_TOKEN}}
    - {name: s, role: viewer, token: {env: SHORT}}
    - {name: u, role: viewer, token: {env: UNSET_VAR}}
  body_limit: 10 parsecs
  compat_environment: nowhere
  gateways:
    - {name: dev, gateway: {url: "http://gw:4444", token: {env: CI_TOKEN}}}
environments:
  - {name: dev, source: {dir: envs/dev}}
"#,
    );
    let err = load(&p, &lookup).unwrap_err().to_string();
    for want in [
        "/api/tokens/1/name: 'ci' is used twice",
        "/api/tokens/1/token: has the same value as token 'ci'",
        "/api/tokens/2/token: is shorter than 16 characters",
        "/api/tokens/3/token: ",
        "/api/body_limit: ",
        "/api/compat_environment: 'nowhere' is neither",
        "/api/gateways/0/name: 'dev' is already the name",
        "/api/gateways/0/gateway/secret: is required",
    ] {
        assert!(err.contains(want), "{want}:\n{err}");
    }
    assert!(!err.contains("ci-token-0123456789abc"), "{err}");
    // A plaintext token in the file is refused (references only).
    let p = write(
        t.path(),
        "api: {tokens: [{name: ci, role: admin, token: plaintext-token-012345}]}\nenvironments:\n  - {name: dev, source: {dir: envs/dev}}\n",
    );
    assert!(load(&p, &lookup).is_err());
    let p = write(
        t.path(),
        "api: {tokens: [{name: ci, role: root, token: {env: CI_TOKEN}}]}\nenvironments:\n  - {name: dev, source: {dir: envs/dev}}\n",
    );
    let err = load(&p, &lookup).unwrap_err().to_string();
    assert!(err.contains("root"), "{err}");
}
