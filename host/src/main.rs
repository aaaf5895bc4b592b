//! The `outrider` binary: reads the command line and hands over to the library.

/// mimalloc instead of glibc's malloc: the server allocates many small, short-lived
/// buffers per event across threads, where glibc spent ~9% of the CPU (measured with
/// `perf` under `cargo xtask bench`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    outrider::cli::main()
}
