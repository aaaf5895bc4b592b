//! The `outrider` binary: reads the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    outrider::cli::main()
}
