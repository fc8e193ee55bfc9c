//! `paydesk`: the merchant back office. `main` stays boring (style.md §2): parse the
//! command line and hand over to [`server::cli::run`].

use std::process::ExitCode;

fn main() -> ExitCode {
    server::cli::run()
}
