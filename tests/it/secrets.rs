//! Credential encryption against ContextForge's own test vectors and, both ways, against the
//! gateway's own `encode_auth` / `decode_auth` in the project's venv.

use crate::common;

use std::process::Command;

use mcp_gitops::core::digest::unhex;
use mcp_gitops::core::secrets::{Credentials, Secret};
use serde_json::Value;

fn vectors() -> Value {
    common::read_json(&common::root().join("tests/data/crypto-test-vectors.json"))
}

#[test]
fn every_vector_decrypts_and_fixed_nonce_vectors_encrypt_byte_for_byte() {
    let v = vectors();
    let random = v["random_nonce_vectors"].as_array().unwrap();
    let fixed = v["fixed_nonce_vectors"].as_array().unwrap();
    assert_eq!(random.len() + fixed.len(), 6);
    for vec in random.iter().chain(fixed) {
        let s = Secret::new(vec["secret"].as_str().unwrap());
        assert_eq!(s.key_hex(), vec["key_hex"].as_str().unwrap());
        let plain = s.decrypt_bytes(vec["encoded"].as_str().unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(plain).unwrap(),
            vec["plaintext_json"].as_str().unwrap()
        );
        // the decoder also takes padded input, as decode_auth does
        let enc = vec["encoded"].as_str().unwrap();
        let padded = format!("{enc}{}", "=".repeat((4 - enc.len() % 4) % 4));
        assert!(s.decrypt(&padded).is_ok());
    }
    for vec in fixed {
        let s = Secret::new(vec["secret"].as_str().unwrap());
        let nonce: [u8; 12] = unhex(vec["nonce_hex"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let creds = s.decrypt(vec["encoded"].as_str().unwrap()).unwrap();
        assert_eq!(
            creds.to_json(),
            vec["plaintext_json"].as_str().unwrap(),
            "orjson-identical JSON"
        );
        assert_eq!(
            s.encrypt_with_nonce(creds.to_json().as_bytes(), &nonce),
            vec["encoded"].as_str().unwrap()
        );
    }
}

fn python(code: &str, args: &[&str]) -> String {
    let out = Command::new(common::root().join(".venv/bin/python"))
        .arg("-c")
        .arg(code)
        .args(args)
        .env("JWT_SECRET_KEY", "test-jwt-secret-key-for-mcp-gitops-tests")
        .output()
        .expect("the project venv exists (make test installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn both_ways_with_the_gateways_own_functions() {
    // install the venv if a bare `cargo test` runs first
    let st = Command::new(common::root().join("tests/gateway/cf.sh"))
        .arg("install")
        .status()
        .unwrap();
    assert!(st.success(), "cannot install the gateway venv");
    let secret = "Unicode ключ 🔑 secret";
    let s = Secret::new(secret);
    let creds = Credentials::from_pairs([
        ("Authorization".to_string(), "Bearer CANARY-xyz".to_string()),
        ("X-Note".to_string(), "naïve ✓".to_string()),
    ]);
    // ours → their decode_auth
    let ours = s.encrypt(&creds);
    let decoded = python(
        "import sys,json\nfrom mcpgateway.utils.services_auth import decode_auth\nprint(json.dumps(decode_auth(sys.argv[1], secret=sys.argv[2]), ensure_ascii=False))",
        &[&ours, secret],
    );
    let v: Value = serde_json::from_str(&decoded).unwrap();
    assert_eq!(v["Authorization"], "Bearer CANARY-xyz");
    assert_eq!(v["X-Note"], "naïve ✓");
    // their encode_auth → ours
    let theirs = python(
        "import sys\nfrom mcpgateway.utils.services_auth import encode_auth\nprint(encode_auth({'Authorization': 'Bearer CANARY-xyz', 'X-Note': 'naïve ✓'}, secret=sys.argv[1]))",
        &[secret],
    );
    assert_eq!(s.decrypt(theirs.trim()).unwrap(), creds);
}
