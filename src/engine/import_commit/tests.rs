//! Against a local bare repository in a temporary directory.

use std::path::Path;

use super::*;
use crate::core::document::{self, Format};
use crate::core::secrets::Credentials;
use crate::engine::git::{Change, GitAuth};

const PLAINTEXT: &str = "Bearer s3cret-import-commit-token";

struct Fixture {
    _dir: tempfile::TempDir,
    target: CommitTarget,
    /// A second clone, to read what was pushed.
    reader: PathBuf,
    bare: PathBuf,
    doc_key: Secret,
    env_key: Secret,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("envs.git");
    git2::Repository::init_bare(&bare).unwrap();
    let remote = Remote::new(&format!("file://{}", bare.display()), GitAuth::default()).unwrap();
    let target = CommitTarget {
        remote,
        branch: "main".into(),
        path: "envs/prod".into(),
        cache_dir: dir.path().join("cache"),
        publish: PublishOptions::default(),
    };
    let mut repo = Repo::open_or_clone(&target.remote, &dir.path().join("seed")).unwrap();
    let files = vec![
        (
            "envs/prod/mcp-gitops.yaml".to_string(),
            b"gateway: http://127.0.0.1:9\nmode: auto\n".to_vec(),
        ),
        (
            "envs/prod/tools.yaml".to_string(),
            br#"{"version": "1", "entities": {"tools": [{"name": "keep", "url": "https://keep.example.com", "integration_type": "REST", "request_type": "GET"}]}}"#
                .to_vec(),
        ),
        ("README.md".to_string(), b"not an environment\n".to_vec()),
    ];
    let seeded = repo
        .publish("main", &PublishOptions::default(), |_| {
            Some(Change {
                files: files.clone(),
                message: "seed".into(),
            })
        })
        .unwrap();
    assert!(matches!(seeded, Published::Committed { .. }), "{seeded:?}");
    Fixture {
        reader: dir.path().join("reader"),
        bare,
        _dir: dir,
        target,
        doc_key: Secret::new("the document's key"),
        env_key: Secret::new("the environment's key"),
    }
}

impl Fixture {
    fn doc(&self, keep_url: &str) -> Document {
        let creds = Credentials::from_pairs([("Authorization".to_string(), PLAINTEXT.to_string())]);
        let a = self.doc_key.encrypt(&creds);
        document::test_doc(&format!(
            r#"{{"tools": [
                {{"name": "a", "url": "https://a.example.com", "integration_type": "REST", "request_type": "GET", "auth_type": "bearer", "auth_value": "{a}"}},
                {{"name": "b", "url": "https://b.example.com", "integration_type": "REST", "request_type": "GET"}},
                {{"name": "keep", "url": "{keep_url}", "integration_type": "REST", "request_type": "GET"}}],
               "servers": [{{"name": "s", "tool_ids": ["a", "keep"]}}]}}"#
        ))
    }

    fn request(&self, whole: Document, include: Option<&str>, strategy: Strategy) -> CommitRequest {
        CommitRequest {
            whole,
            file: "request body".into(),
            include: include.map(|s| IncludeSpec::parse(s).unwrap()),
            strategy,
            document_key: Some(self.doc_key.clone()),
            env_key: Some(self.env_key.clone()),
            review_branch: None,
            dry_run: false,
        }
    }

    fn head(&self, branch: &str) -> Option<CommitId> {
        Repo::open_or_clone(&self.target.remote, &self.reader)
            .unwrap()
            .branch_head(branch)
            .unwrap()
    }

    /// The environment's files at the head of `branch`.
    fn files(&self, branch: &str) -> git::Tree {
        let repo = Repo::open_or_clone(&self.target.remote, &self.reader).unwrap();
        let head = repo.branch_head(branch).unwrap().expect("branch");
        repo.read(&head, "envs/prod").unwrap().1
    }
}

/// Loads the environment as a daemon would (variables substituted, every file checked).
fn load(dir: &Path, _root: &Path) -> Result<(), String> {
    environment::load(dir)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn tool<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["entities"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no tool {name} in {doc}"))
}

#[test]
fn selected_entities_are_committed_rekeyed_once() {
    let f = fixture();
    let before = f.head("main").unwrap();
    let req = f.request(
        f.doc("https://keep.example.com"),
        Some("servers:s"),
        Strategy::Update,
    );
    let out = commit_import(&f.target, &req, &load).unwrap();
    let commit = out.commit.clone().expect("a commit");
    assert_eq!(out.branch, "main");
    assert_eq!(out.base.as_ref(), Some(&before));
    assert!(!out.review);
    assert_eq!(out.files, ["envs/prod/promoted.yaml"]);
    let message = out.message.clone().unwrap();
    assert!(
        message.starts_with("import: +1 tool (a), +1 server (s)\n"),
        "{message}"
    );
    assert_eq!(
        (
            out.count(Verb::Create),
            out.count(Verb::Unchanged),
            out.count(Verb::Skip)
        ),
        (2, 1, 0),
        "{:?}",
        out.items
    );
    assert!(out.items.iter().all(|i| i.name != "b"), "b is not selected");
    assert_eq!(f.head("main"), Some(commit));

    let files = f.files("main");
    let text = String::from_utf8(files["promoted.yaml"].clone()).unwrap();
    assert!(!text.contains(PLAINTEXT), "no plaintext credential: {text}");
    let v = document::parse_value(&text, Some(Format::Yaml), "promoted.yaml").unwrap();
    let value = tool(&v, "a")["auth_value"].as_str().unwrap().to_string();
    assert!(f.doc_key.decrypt(&value).is_err(), "not the document's key");
    let creds = f.env_key.decrypt(&value).expect("the environment's key");
    assert_eq!(creds.pairs().next(), Some(("Authorization", PLAINTEXT)));
    assert!(
        String::from_utf8_lossy(&files["tools.yaml"]).contains("keep.example.com"),
        "tools.yaml untouched"
    );

    // The same import again: nothing changes, no commit.
    let again = commit_import(&f.target, &req, &load).unwrap();
    assert_eq!(again.commit, None, "{again:?}");
    assert_eq!(again.count(Verb::Unchanged), 3, "{:?}", again.items);
    assert!(again.files.is_empty() && again.message.is_none());
    assert_eq!(f.head("main"), out.commit);
}

#[test]
fn a_review_branch_starts_at_the_environment_branch_and_leaves_it_alone() {
    let f = fixture();
    let main = f.head("main").unwrap();
    let mut req = f.request(f.doc("https://keep.example.com"), None, Strategy::Update);
    req.review_branch = Some("review/import".into());
    let out = commit_import(&f.target, &req, &load).unwrap();
    assert_eq!(out.branch, "review/import");
    assert!(out.review);
    assert_eq!(out.base.as_ref(), Some(&main), "started from main's head");
    let review = f.head("review/import").expect("review branch pushed");
    assert_eq!(out.commit.as_ref(), Some(&review));
    assert_eq!(f.head("main"), Some(main.clone()), "main untouched");
    let text = String::from_utf8(f.files("review/import")["promoted.yaml"].clone()).unwrap();
    for name in ["name: a", "name: b", "name: s"] {
        assert!(text.contains(name), "{name} in {text}");
    }
    let parent = git2::Repository::open(&f.bare)
        .unwrap()
        .find_commit(git2::Oid::from_str(&review.0).unwrap())
        .unwrap()
        .parent_id(0)
        .unwrap()
        .to_string();
    assert_eq!(parent, main.0, "one commit on top of main");
}

#[test]
fn strategies_decide_what_the_environment_already_defines() {
    let f = fixture();
    let changed = || f.doc("https://moved.example.com");
    let main = f.head("main");

    // skip: keep stays as the environment defines it; nothing else selected changes either.
    let out = commit_import(
        &f.target,
        &f.request(changed(), Some("tools:keep"), Strategy::Skip),
        &load,
    )
    .unwrap();
    assert_eq!(out.commit, None, "{out:?}");
    let keep = out.items.iter().find(|i| i.name == "keep").unwrap();
    assert_eq!(keep.result, Verb::Skip);
    assert_eq!(keep.fields, ["url"]);
    assert_eq!(f.head("main"), main);

    // fail: refused, naming the conflict; nothing pushed.
    let err = commit_import(
        &f.target,
        &f.request(changed(), Some("tools:keep"), Strategy::Fail),
        &load,
    )
    .unwrap_err();
    assert!(
        matches!(&err, CommitError::Conflicts { conflicts } if conflicts == &["tool keep (url)"]),
        "{err}"
    );
    assert_eq!(f.head("main"), main);

    // rename has no place in a desired state.
    let err = commit_import(
        &f.target,
        &f.request(changed(), None, Strategy::Rename),
        &load,
    )
    .unwrap_err();
    assert!(matches!(err, CommitError::Rename), "{err}");

    // update: replaced in the file that defines it.
    let out = commit_import(
        &f.target,
        &f.request(changed(), Some("tools:keep"), Strategy::Update),
        &load,
    )
    .unwrap();
    assert!(out.commit.is_some(), "{out:?}");
    assert_eq!(out.files, ["envs/prod/tools.yaml"]);
    assert!(
        out.message
            .as_deref()
            .unwrap()
            .starts_with("import: ~1 tool (keep)"),
        "{out:?}"
    );
    let text = String::from_utf8(f.files("main")["tools.yaml"].clone()).unwrap();
    assert!(text.contains("moved.example.com"), "{text}");
}

#[test]
fn nothing_is_pushed_when_the_result_is_not_a_valid_environment() {
    let f = fixture();
    let main = f.head("main");
    let doc = document::test_doc(
        r#"{"tools": [{"name": "odd", "url": "https://odd.example.com", "integration_type": "REST",
            "request_type": "GET", "description": "reads ${IMPORT_COMMIT_TEST_UNSET_VARIABLE}"}]}"#,
    );
    let err = commit_import(&f.target, &f.request(doc, None, Strategy::Update), &load).unwrap_err();
    assert!(
        matches!(&err, CommitError::Invalid { reason, .. } if reason.contains("IMPORT_COMMIT_TEST_UNSET_VARIABLE")),
        "{err}"
    );
    assert_eq!(f.head("main"), main, "nothing pushed");
    assert!(!f.files("main").contains_key("promoted.yaml"));

    // The caller's loader decides: one that refuses refuses the commit.
    let refuse = |_: &Path, _: &Path| Err("the daemon's rules refuse it".to_string());
    let req = f.request(f.doc("https://keep.example.com"), None, Strategy::Update);
    let err = commit_import(&f.target, &req, &refuse).unwrap_err();
    assert!(
        err.to_string().contains("the daemon's rules refuse it"),
        "{err}"
    );
    assert_eq!(f.head("main"), main, "nothing pushed");
}

#[test]
fn a_dry_run_says_what_the_commit_would_be_and_pushes_nothing() {
    let f = fixture();
    let main = f.head("main");
    let mut req = f.request(
        f.doc("https://keep.example.com"),
        Some("tools:b"),
        Strategy::Update,
    );
    req.dry_run = true;
    let out = commit_import(&f.target, &req, &load).unwrap();
    assert_eq!(out.commit, None);
    assert_eq!(out.files, ["envs/prod/promoted.yaml"]);
    assert!(
        out.message
            .as_deref()
            .unwrap()
            .starts_with("import: +1 tool (b)"),
        "{out:?}"
    );
    assert_eq!(f.head("main"), main);
}

#[test]
fn a_path_that_is_no_environment_is_refused() {
    let mut f = fixture();
    f.target.path = "envs".into();
    let req = f.request(f.doc("https://keep.example.com"), None, Strategy::Update);
    let err = commit_import(&f.target, &req, &load).unwrap_err();
    assert!(
        matches!(&err, CommitError::NoEnvironment { path, branch, .. } if path == "envs" && branch == "main"),
        "{err}"
    );
    let req = f.request(
        f.doc("https://keep.example.com"),
        Some("prompts:nothing-like-this"),
        Strategy::Update,
    );
    assert!(matches!(
        commit_import(&f.target, &req, &load),
        Err(CommitError::NothingMatched { .. })
    ));
}
