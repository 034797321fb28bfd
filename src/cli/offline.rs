//! Commands that need no gateway: `validate` and `rekey`.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, SecretArg, exit};
use crate::core::document::{self, Format, validate::Context};
use crate::core::secrets::Secret;

#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Document file (JSON or YAML), or - for standard input.
    pub file: PathBuf,
    /// Also check that every auth_value decrypts with this secret.
    #[command(flatten)]
    pub secret: SecretArg,
}

pub fn validate(a: ValidateArgs) -> Result<u8, CliError> {
    let doc = document::load_path(&a.file).map_err(CliError::invalid)?;
    let secret = a.secret.optional();
    let file = a.file.display().to_string();
    document::validate(
        &doc,
        &file,
        &Context {
            secret: secret.as_ref(),
            live: None,
        },
    )
    .map_err(CliError::invalid)?;
    let aside = document::federated::detect(&doc);
    let kept = document::federated::without(&doc, &aside);
    let also = match aside.len() {
        0 => String::new(),
        n => format!(
            "; {n} federated entr{} set aside",
            if n == 1 { "y" } else { "ies" }
        ),
    };
    println!(
        "{file}: valid ({} entities: {}{also})",
        kept.entities.total(),
        kept.entities.summary()
    );
    for s in &aside {
        println!(
            "  set aside {} {} ({}): {}",
            s.kind,
            s.key,
            s.pointer(),
            s.reason
        );
    }
    Ok(exit::OK)
}

#[derive(Args, Debug)]
pub struct RekeyArgs {
    /// Document file (JSON or YAML), or - for standard input.
    pub file: PathBuf,
    /// The secret the document is encrypted with now.
    #[command(flatten)]
    pub secret: SecretArg,
    /// The secret to encrypt with.
    #[arg(long, hide_env_values = true)]
    pub rekey_secret: String,
    /// Output file, or - for standard output.
    #[arg(long, short = 'o', default_value = "-")]
    pub out: PathBuf,
    #[arg(long, value_parser = super::format_parser())]
    pub format: Option<Format>,
}

pub fn rekey(a: RekeyArgs) -> Result<u8, CliError> {
    let from = a.secret.require("it decrypts the document's credentials")?;
    if a.rekey_secret.is_empty() {
        return Err(CliError::invalid("--rekey-secret must not be empty"));
    }
    let to = Secret::new(&a.rekey_secret);
    let file = a.file.display().to_string();
    let mut doc = document::load_path(&a.file).map_err(CliError::invalid)?;
    // Every value must decrypt before anything is written.
    document::validate(
        &doc,
        &file,
        &Context {
            secret: Some(&from),
            live: None,
        },
    )
    .map_err(CliError::invalid)?;
    let mut n = 0;
    let values = doc
        .entities
        .tools
        .iter_mut()
        .map(|t| &mut t.auth_value)
        .chain(doc.entities.gateways.iter_mut().map(|g| &mut g.auth_value));
    for v in values.flatten() {
        *v = from.rekey(v, &to).map_err(CliError::invalid)?;
        n += 1;
    }
    let format = a
        .format
        .or_else(|| Format::from_path(&a.out))
        .or_else(|| Format::from_path(&a.file))
        .unwrap_or(Format::Json);
    let text = document::to_string(&doc, format);
    if crate::core::fsutil::is_stdout(&a.out) {
        print!("{text}");
    } else {
        crate::core::fsutil::write_atomic(&a.out, text.as_bytes()).map_err(|e| {
            CliError::new(exit::IO, format!("cannot write {}: {e}", a.out.display()))
        })?;
    }
    eprintln!(
        "Re-encrypted {n} credential{} (key {} -> {})",
        if n == 1 { "" } else { "s" },
        from.fingerprint(),
        to.fingerprint()
    );
    Ok(exit::OK)
}
