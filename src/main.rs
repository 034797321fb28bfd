use std::process::ExitCode;

fn main() -> ExitCode {
    let code = mcp_gitops::cli::main();
    ExitCode::from(code)
}
