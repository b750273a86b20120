//! sys: every system call of host-container. Mounts, device nodes, the hostname and
//! pivot_root sit behind the narrow [`Sys`] trait, so the mount plan and the overlay are
//! unit-tested with a recording fake; process plumbing (clone into namespaces, pidfds,
//! ptys, signals, capabilities) are plain functions in this one file.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::stat::{Mode, SFlag};
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use nix::unistd::{AccessFlags, Pid};

/// The descriptor under which a container's init keeps a duplicate of its console's pty
/// master, so the console survives a server that dies; a restarted server takes it back
/// with `pidfd_getfd`.
pub const CONSOLE_KEEP_FD: RawFd = 100;

/// The descriptor of the shim's end of the launch handshake socket.
pub const SYNC_FD: RawFd = 3;

/// One flag of `mount(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountFlag {
    /// `MS_RDONLY`.
    ReadOnly,
    /// `MS_NOSUID`.
    NoSuid,
    /// `MS_NODEV`.
    NoDev,
    /// `MS_NOEXEC`.
    NoExec,
    /// `MS_STRICTATIME`.
    StrictAtime,
    /// `MS_BIND`.
    Bind,
    /// `MS_REC`.
    Recursive,
    /// `MS_REMOUNT`.
    Remount,
    /// `MS_PRIVATE`.
    Private,
}

fn ms_flags(flags: &[MountFlag]) -> MsFlags {
    flags.iter().fold(MsFlags::empty(), |acc, f| {
        acc | match f {
            MountFlag::ReadOnly => MsFlags::MS_RDONLY,
            MountFlag::NoSuid => MsFlags::MS_NOSUID,
            MountFlag::NoDev => MsFlags::MS_NODEV,
            MountFlag::NoExec => MsFlags::MS_NOEXEC,
            MountFlag::StrictAtime => MsFlags::MS_STRICTATIME,
            MountFlag::Bind => MsFlags::MS_BIND,
            MountFlag::Recursive => MsFlags::MS_REC,
            MountFlag::Remount => MsFlags::MS_REMOUNT,
            MountFlag::Private => MsFlags::MS_PRIVATE,
        }
    })
}

/// One `mount(2)` call. Empty `source`, `fstype` or `data` are passed as NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Device or source path.
    pub source: String,
    /// Mount point.
    pub target: PathBuf,
    /// Filesystem type.
    pub fstype: String,
    /// Flags.
    pub flags: Vec<MountFlag>,
    /// Filesystem options.
    pub data: String,
}

/// The system calls the mount plan and the overlay make.
pub trait Sys: Send + Sync {
    /// `mount(2)`.
    fn mount(&self, m: &Mount) -> io::Result<()>;
    /// `umount2(2)`, lazily (`MNT_DETACH`) when `detach`.
    fn unmount(&self, target: &Path, detach: bool) -> io::Result<()>;
    /// `mknod(2)` of a character device with mode 0666.
    fn mknod_char(&self, path: &Path, major: u64, minor: u64) -> io::Result<()>;
    /// `sethostname(2)`.
    fn set_hostname(&self, name: &str) -> io::Result<()>;
    /// Makes `root` the root of the mount namespace and drops the old root
    /// (`pivot_root(".", ".")` then a lazy unmount, as runc does).
    fn pivot_root(&self, root: &Path) -> io::Result<()>;
}

/// The real system calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

fn opt(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

impl Sys for RealSys {
    fn mount(&self, m: &Mount) -> io::Result<()> {
        nix::mount::mount(
            opt(&m.source),
            &m.target,
            opt(&m.fstype),
            ms_flags(&m.flags),
            opt(&m.data),
        )
        .map_err(io::Error::from)
    }

    fn unmount(&self, target: &Path, detach: bool) -> io::Result<()> {
        let flags = if detach {
            MntFlags::MNT_DETACH
        } else {
            MntFlags::empty()
        };
        nix::mount::umount2(target, flags).map_err(io::Error::from)
    }

    fn mknod_char(&self, path: &Path, major: u64, minor: u64) -> io::Result<()> {
        let dev = nix::sys::stat::makedev(major, minor);
        nix::sys::stat::mknod(path, SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), dev)?;
        // mknod honours the umask; the nodes must be usable by everyone.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            Mode::from_bits_truncate(0o666),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )
        .map_err(io::Error::from)
    }

    fn set_hostname(&self, name: &str) -> io::Result<()> {
        nix::unistd::sethostname(name).map_err(io::Error::from)
    }

    fn pivot_root(&self, root: &Path) -> io::Result<()> {
        nix::unistd::chdir(root)?;
        nix::unistd::pivot_root(".", ".")?;
        nix::mount::umount2(".", MntFlags::MNT_DETACH)?;
        nix::unistd::chdir("/").map_err(io::Error::from)
    }
}

/// `mkfifo(3)` with mode 0666 (server side, in the instance directory).
pub fn mkfifo(path: &Path) -> io::Result<()> {
    nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o666)).map_err(io::Error::from)
}

/// A new pseudo-terminal: the master (non-blocking, for the server's relay) and the
/// slave (the container's stdio and `/dev/console`), both close-on-exec.
pub struct Pty {
    /// The master side.
    pub master: OwnedFd,
    /// The slave side.
    pub slave: OwnedFd,
    /// The slave's path (`/dev/pts/N`).
    pub slave_path: PathBuf,
}

nix::ioctl_write_ptr_bad!(
    /// `TIOCSWINSZ`: sets a terminal's window size.
    set_winsize,
    libc::TIOCSWINSZ,
    libc::winsize
);

/// Opens a pty of 80x24.
pub fn open_pty() -> io::Result<Pty> {
    let master = nix::pty::posix_openpt(
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
    )?;
    nix::pty::grantpt(&master)?;
    nix::pty::unlockpt(&master)?;
    let slave_path = PathBuf::from(nix::pty::ptsname_r(&master)?);
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&slave_path)?;
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    #[expect(unsafe_code, reason = "TIOCSWINSZ has no safe wrapper")]
    // SAFETY: the master fd is open for the duration of the call and `size` is a valid
    // winsize the kernel only reads.
    unsafe {
        set_winsize(master.as_raw_fd(), &size)?;
    }
    Ok(Pty {
        master: master.into(),
        slave: slave.into(),
        slave_path,
    })
}

/// What the cloned child is given: its stdio, handshake socket and the pty master to keep.
pub struct ShimFds<'a> {
    /// Becomes 0, 1 and 2.
    pub stdio: BorrowedFd<'a>,
    /// Becomes [`SYNC_FD`].
    pub sync: BorrowedFd<'a>,
    /// Becomes [`CONSOLE_KEEP_FD`].
    pub keep: BorrowedFd<'a>,
}

/// Starts `exe argv…` (empty environment) as PID 1 of new pid, mount, uts, ipc and net
/// namespaces, with `fds` in place. Returns its PID in the server's namespace.
pub fn spawn_in_namespaces(exe: &Path, argv: &[String], fds: ShimFds<'_>) -> io::Result<u32> {
    let cstr = |s: &str| CString::new(s).map_err(|_| io::Error::other("nul byte in argument"));
    let exe = cstr(&exe.to_string_lossy())?;
    let args: Vec<CString> = argv.iter().map(|a| cstr(a)).collect::<io::Result<_>>()?;
    // Everything the child touches is prepared here: between clone and exec it may
    // only make async-signal-safe calls (no allocation, no locks).
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let env_ptrs: [*const libc::c_char; 1] = [std::ptr::null()];
    let (stdio, sync, keep) = (
        fds.stdio.as_raw_fd(),
        fds.sync.as_raw_fd(),
        fds.keep.as_raw_fd(),
    );
    let exe_ptr = exe.as_ptr();
    let mut stack = vec![0u8; 64 * 1024];
    let child = move || -> isize {
        #[expect(unsafe_code, reason = "the clone child may only make raw syscalls")]
        // SAFETY: only async-signal-safe libc calls on plain integers and pointers into
        // buffers prepared before clone (argv, envp), which stay valid in the child's
        // copy of the address space; the child either execs or exits at once.
        unsafe {
            // Lift the sources above the targets first so no dup2 clobbers another.
            let s = libc::fcntl(stdio, libc::F_DUPFD_CLOEXEC, 200);
            let y = libc::fcntl(sync, libc::F_DUPFD_CLOEXEC, 200);
            let k = libc::fcntl(keep, libc::F_DUPFD_CLOEXEC, 200);
            if s < 0 || y < 0 || k < 0 {
                libc::_exit(126);
            }
            for target in 0..3 {
                if libc::dup2(s, target) < 0 {
                    libc::_exit(126);
                }
            }
            if libc::dup2(y, SYNC_FD) < 0 || libc::dup2(k, CONSOLE_KEEP_FD) < 0 {
                libc::_exit(126);
            }
            libc::execve(exe_ptr, arg_ptrs.as_ptr(), env_ptrs.as_ptr());
            libc::_exit(127)
        }
    };
    let flags = CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNET;
    #[expect(unsafe_code, reason = "clone(2) into new namespaces has no safe form")]
    // SAFETY: the child runs `child` on `stack` (64 KiB, far more than a few syscalls
    // need) in its own copy of the address space and never returns into Rust code that
    // could observe state copied mid-operation from other threads: it execs or _exits.
    let pid =
        unsafe { nix::sched::clone(Box::new(child), &mut stack, flags, Some(libc::SIGCHLD)) }?;
    u32::try_from(pid.as_raw()).map_err(|_| io::Error::other("negative pid"))
}

/// `pidfd_open(2)`: a descriptor that becomes readable when `pid` ends.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    #[expect(unsafe_code, reason = "pidfd_open has no wrapper in nix or libc")]
    // SAFETY: a syscall taking two integers; it returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    owned(fd)
}

/// `pidfd_getfd(2)`: a duplicate of descriptor `fd` of the process behind `pidfd`.
pub fn pidfd_getfd(pidfd: BorrowedFd<'_>, fd: RawFd) -> io::Result<OwnedFd> {
    #[expect(unsafe_code, reason = "pidfd_getfd has no wrapper in nix or libc")]
    // SAFETY: a syscall taking three integers; it returns a new descriptor or -1.
    let new = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    let owned = owned(new)?;
    nix::fcntl::fcntl(
        &owned,
        nix::fcntl::FcntlArg::F_SETFL(OFlag::O_RDWR | OFlag::O_NONBLOCK),
    )?;
    Ok(owned)
}

fn owned(fd: libc::c_long) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::other("descriptor out of range"))?;
    #[expect(unsafe_code, reason = "adopting a descriptor the kernel just returned")]
    // SAFETY: `fd` was just returned by the kernel, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends SIGKILL to `pid`; a process that is already gone is not an error.
pub fn kill(pid: u32) -> io::Result<()> {
    let pid = Pid::from_raw(libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid"))?);
    match nix::sys::signal::kill(pid, Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// How a child ended, as `waitpid(2)` tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Exited with this status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
    /// Not our child (a container adopted after a restart): no status.
    Unknown,
    /// Still running.
    Running,
}

/// Reaps `pid` if it has ended (never blocks).
pub fn try_reap(pid: u32) -> Ended {
    let Ok(raw) = libc::pid_t::try_from(pid) else {
        return Ended::Unknown;
    };
    match nix::sys::wait::waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Ended::Exited(code),
        Ok(WaitStatus::Signaled(_, sig, _)) => Ended::Signaled(sig as i32),
        Ok(WaitStatus::StillAlive) => Ended::Running,
        Ok(_) => Ended::Running,
        Err(_) => Ended::Unknown,
    }
}

/// The shim's end of the handshake socket, inherited as [`SYNC_FD`] and marked
/// close-on-exec so init does not inherit it.
pub fn inherited_sync_socket() -> io::Result<std::os::unix::net::UnixStream> {
    #[expect(unsafe_code, reason = "adopting an inherited descriptor")]
    // SAFETY: the server's clone child put the socket at SYNC_FD before exec; nothing
    // else in this fresh process owns that descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(SYNC_FD) };
    nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(std::os::unix::net::UnixStream::from(fd))
}

/// Makes the shim the leader of a new session. The pty is deliberately not made its
/// controlling terminal, so init's children (busybox init's console shell) can take it.
pub fn new_session() -> io::Result<()> {
    nix::unistd::setsid().map(drop).map_err(io::Error::from)
}

/// Whether `path` exists and is executable (resolved in the current root).
pub fn executable(path: &Path) -> io::Result<()> {
    nix::unistd::access(path, AccessFlags::X_OK).map_err(io::Error::from)
}

/// Drops every capability but `keep` from the bounding set, so init and its children
/// (root, without file capabilities) end up with at most `keep`.
pub fn drop_bounding_caps(keep: &[u32]) -> io::Result<()> {
    let last: u32 = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40);
    for cap in (0..=last).filter(|c| !keep.contains(c)) {
        #[expect(unsafe_code, reason = "PR_CAPBSET_DROP has no safe wrapper")]
        // SAFETY: prctl with integer arguments only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if r < 0 {
            let e = io::Error::last_os_error();
            // EINVAL: a capability this kernel does not know.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Replaces the shim with `argv[0]` (resolved in the container's root, no PATH lookup)
/// and an empty environment. Returns only on failure.
pub fn exec(argv: &[String]) -> io::Error {
    let args: Result<Vec<CString>, _> = argv.iter().map(|a| CString::new(a.as_str())).collect();
    let Ok(args) = args else {
        return io::Error::other("nul byte in init arguments");
    };
    let Some(prog) = args.first() else {
        return io::Error::other("empty init");
    };
    let env: [&CStr; 0] = [];
    match nix::unistd::execve(prog, &args, &env) {
        Ok(never) => match never {},
        Err(e) => e.into(),
    }
}

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`),
/// which tells a live process from a later one that reused its PID.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // `rest` starts at field 3 (state); start time is field 22.
    fields.nth(18)?.parse().ok()
}

/// Registers an owned descriptor with tokio's reactor as `T` (a `File` or the `OwnedFd`
/// itself), for readiness-driven I/O.
pub fn register<T>(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<T>>
where
    T: AsRawFd + From<OwnedFd>,
{
    #[expect(unsafe_code, reason = "tokio's AsyncFd registration is unsafe")]
    // SAFETY: `T` is built from the OwnedFd and takes it over; it keeps that one
    // descriptor open, unchanged, until the AsyncFd drops it.
    let registered = unsafe { tokio::io::unix::AsyncFd::register(T::from(fd)) };
    registered.map_err(io::Error::from)
}

/// Gives init default signal dispositions and an empty signal mask. The shim inherits
/// the server's (Rust ignores SIGPIPE; a supervisor may ignore more), and a shell keeps
/// what it finds ignored for every program it starts. (glibc refuses to touch the two
/// real-time signals it reserves; its programs set those up themselves.)
pub fn reset_signals() -> io::Result<()> {
    use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        #[expect(
            unsafe_code,
            reason = "signal(2) for real-time signals has no nix form"
        )]
        // SAFETY: SIG_DFL installs no handler of ours, so no code can run in signal
        // context; the shim is single-threaded and execs right after.
        let r = unsafe { libc::signal(sig, libc::SIG_DFL) };
        if r == libc::SIG_ERR {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    Ok(())
}
