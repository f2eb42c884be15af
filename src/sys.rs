//! The operating system's figures and limits this server reads or raises: CPU time, resident
//! memory, the open-file limit. Every platform call of the server lives here, so the rest of
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
}
