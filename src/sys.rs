//! The operating system's figures and limits this server reads or raises: CPU time, resident
//! memory, the open-file limit, a thread's scheduling priority. Every platform call of the server lives here, so the rest of
//! the code reads plain numbers and the `unsafe` of a libc call sits next to its reason.
//!
//! Linux only (as the server is: mio's epoll, `/proc`). Never panics: a figure the system
//! will not give reads as zero.

use std::time::Duration;

/// CPU time this process has used, in user and in system mode (`getrusage(RUSAGE_SELF)`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: Duration,
    pub system: Duration,
}

pub fn cpu_times() -> CpuTimes {
    cpu_times_of(Whose::ThisProcess)
}

/// Whose CPU time [`cpu_times_of`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    ThisProcess,
    /// Children this process has waited for (Redis's `used_cpu_*_children`).
    WaitedChildren,
}

pub fn cpu_times_of(whose: Whose) -> CpuTimes {
    let who = match whose {
        Whose::ThisProcess => libc::RUSAGE_SELF,
        Whose::WaitedChildren => libc::RUSAGE_CHILDREN,
    };
    // SAFETY: getrusage only writes into the zeroed struct we own (all-zero is a valid
    // `rusage`: plain integers and timevals).
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut usage) != 0 {
            return CpuTimes::default();
        }
        usage
    };
    let duration = |tv: libc::timeval| {
        Duration::from_secs(tv.tv_sec.max(0) as u64)
            + Duration::from_micros(tv.tv_usec.max(0) as u64)
    };
    CpuTimes {
        user: duration(usage.ru_utime),
        system: duration(usage.ru_stime),
    }
}

/// Resident memory of this process in bytes (`/proc/self/statm`, second field, in pages).
pub fn rss_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0);
    pages * page_size()
}

fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the system; it touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// The open-file limit could not be raised to what was wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("open file limit is {limit}; fewer than the {wanted} wanted")]
pub struct FdLimitTooLow {
    pub limit: u64,
    pub wanted: u64,
}

/// Raises the soft limit on open files to `wanted` (as memcached does at start), never above
/// the hard limit.
pub fn raise_fd_limit(wanted: u64) -> Result<(), FdLimitTooLow> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(()); // nothing known to raise; leave it to the system
    }
    if limit.rlim_cur >= wanted {
        return Ok(());
    }
    let target = wanted.min(limit.rlim_max);
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    let refused = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0;
    if refused || target < wanted {
        let limit = if refused { limit.rlim_cur } else { target };
        return Err(FdLimitTooLow { limit, wanted });
    }
    Ok(())
}

/// Sets the calling thread's nice value (0: as every other thread .. 19: the least share),
/// never raising its priority: Linux keeps a nice value per thread
/// (`setpriority(PRIO_PROCESS, gettid())`), so the rest of the process is untouched. When
/// the cores are busy the thread then gets CPU in proportion to its weight (nice 19 weighs
/// 15 against 1024 at nice 0); when they are idle it runs at full speed.
pub fn lower_thread_priority(nice: i32) -> std::io::Result<()> {
    let nice = nice.clamp(thread_nice(), 19);
    // SAFETY: gettid takes no argument and touches no memory.
    let tid = unsafe { libc::gettid() };
    // SAFETY: setpriority only reads its integer arguments.
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The calling thread's nice value.
pub fn thread_nice() -> i32 {
    // SAFETY: gettid and getpriority take integers and touch no memory of ours (a -1 from
    // getpriority is a valid nice value, so errno is not consulted: this thread exists).
    unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_read() {
        assert!(rss_bytes() > 0);
        let spent = cpu_times();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(cpu_times().user + cpu_times().system >= spent.user + spent.system);
        assert!(raise_fd_limit(16).is_ok());
    }

    #[test]
    fn a_thread_lowers_its_own_priority_only() {
        let mine = thread_nice();
        let theirs = std::thread::spawn(|| {
            lower_thread_priority(10).expect("lowering a priority is always allowed");
            let lowered = thread_nice();
            // Never back up: a lower number asked for later is ignored.
            lower_thread_priority(0).expect("a no-op");
            (lowered, thread_nice())
        })
        .join()
        .unwrap();
        assert_eq!(theirs, (10.max(mine), 10.max(mine)));
        assert_eq!(thread_nice(), mine, "the calling thread keeps its priority");
    }
}
