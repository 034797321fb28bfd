use std::path::Path;

use super::*;

fn vars(v: &str) -> Option<String> {
    match v {
        "HOOK_SECRET" => Some("s3cret-hook".into()),
        "REPO" => Some("/srv/git/config.git".into()),
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
    assert!(err.starts_with(&format!("{file}: 14 problems")), "{err}");
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
    let lookup = |v: &str| (v == "MCP_GITOPS_WEBHOOK_SECRET").then(|| "x".to_string());
    // `token_env` must name a variable that is set (checked through the process environment).
    let err = load(&example, &lookup).unwrap_err().to_string();
    assert!(err.contains("BACKUP_GIT_TOKEN"), "{err}");
    assert!(err.contains("1 problem"), "{err}");
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("token_env: BACKUP_GIT_TOKEN", "token_env: PATH");
    let t = tempfile::tempdir().unwrap();
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
}
