//! The traits the domain needs from the host; only the daemon names the real implementations.

use std::future::Future;
use std::pin::Pin;

/// A boxed future, so the traits stay object-safe behind `Arc<dyn …>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a program printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
}

/// Host programs and this process's figures: `shell`, `background`, `check`, `debug`.
pub trait HostSystem: Send + Sync {
    /// Run `argv` (PATH lookup, no shell) and wait. Errors are spawn failures,
    /// with Go's text for a missing program (`exec: "x": executable file not found in $PATH`).
    fn run<'a>(&'a self, argv: &'a [String]) -> BoxFuture<'a, Result<ProgramOutput, String>>;
    /// Start `argv` and return at once; its output goes to the log.
    fn spawn_background(&self, argv: &[String]) -> Result<u32, String>;
    /// Problems with the host's external programs, empty when all is well.
    fn check(&self) -> BoxFuture<'_, Vec<String>>;
    /// Figures about the server process for `debug` (name, value), in column order.
    fn process_figures(&self) -> Vec<(String, String)>;
    /// A memory report of the server process (`debug memory`).
    fn process_report(&self) -> String;
    /// A listing of the server's threads (`debug goroutine`).
    fn thread_report(&self) -> String;
    /// CPU time used by the server process so far, in clock ticks.
    fn cpu_ticks(&self) -> u64;
}

/// Starts and drives VMs of one type. The KVM and container issues provide these.
pub trait VmRuntime: Send + Sync {
    /// Start the VM's process for `vm`, paused (BUILDING). Returns its PID.
    fn launch<'a>(&'a self, vm: &'a crate::vm::registry::Vm) -> BoxFuture<'a, Result<u32, String>>;
    /// Resume a BUILDING or PAUSED VM.
    fn resume<'a>(&'a self, vm: &'a crate::vm::registry::Vm) -> BoxFuture<'a, Result<(), String>>;
    /// Pause a RUNNING VM.
    fn pause<'a>(&'a self, vm: &'a crate::vm::registry::Vm) -> BoxFuture<'a, Result<(), String>>;
    /// Kill the VM's process and wait for it to exit.
    fn kill<'a>(&'a self, vm: &'a crate::vm::registry::Vm) -> BoxFuture<'a, Result<(), String>>;
}
