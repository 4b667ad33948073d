//! The `hark` command: a thin layer over the library. See `hark --help`.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
