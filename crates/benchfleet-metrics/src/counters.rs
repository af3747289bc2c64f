//! Hardware counters (instructions, cycles) of one child through `perf_event_open`.
//!
//! The child opens the events on itself between fork and exec (`disabled`, `enable_on_exec`,
//! `inherit`), so they count exactly the exec'd program and everything it starts, and hands the
//! fds to the parent over a socketpair (`SCM_RIGHTS`). The parent reads them after the reap. An
//! event the kernel refuses, or one that never got scheduled, is reported as `None`, never 0.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use serde::{Deserialize, Serialize};

/// Hardware counters of one run. `None` means unavailable (not requested, no PMU — common in
/// VMs —, forbidden by `perf_event_paranoid`, or never scheduled), never "zero events".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub instructions: Option<u64>,
    pub cycles: Option<u64>,
    /// The counts exclude kernel mode (`perf_event_paranoid` ≥ 2 without privileges).
    #[serde(default)]
    pub user_only: bool,
    /// The counter was multiplexed and its value is scaled by `time_enabled / time_running`.
    #[serde(default)]
    pub scaled: bool,
    /// Why a requested counter is unavailable (e.g. `instructions: No such file or directory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

const PERF_TYPE_HARDWARE: u32 = 0;
const PERF_COUNT_HW_CPU_CYCLES: u64 = 0;
const PERF_COUNT_HW_INSTRUCTIONS: u64 = 1;
const PERF_FORMAT_TOTAL_TIME_ENABLED: u64 = 1;
const PERF_FORMAT_TOTAL_TIME_RUNNING: u64 = 2;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_INHERIT: u64 = 1 << 1;
const FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
const FLAG_EXCLUDE_HV: u64 = 1 << 6;
const FLAG_ENABLE_ON_EXEC: u64 = 1 << 12;

/// `struct perf_event_attr`, `PERF_ATTR_SIZE_VER5` (112 bytes) layout.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
}

const EVENTS: [u64; 2] = [PERF_COUNT_HW_INSTRUCTIONS, PERF_COUNT_HW_CPU_CYCLES];
const EVENT_NAMES: [&str; 2] = ["instructions", "cycles"];

/// The parent's end of the fd hand-over; the child's end is passed to [`child_open_and_send`].
#[derive(Debug)]
pub(crate) struct Handover {
    pub parent: OwnedFd,
    pub child: OwnedFd,
}

pub(crate) fn handover() -> io::Result<Handover> {
    let mut fds = [-1; 2];
    // SAFETY: `fds` is a live array of two ints.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair returned two fresh fds we own.
    Ok(unsafe {
        Handover {
            parent: OwnedFd::from_raw_fd(fds[0]),
            child: OwnedFd::from_raw_fd(fds[1]),
        }
    })
}

fn open_event(config: u64, exclude_kernel: bool) -> Result<RawFd, i32> {
    let mut attr = PerfEventAttr {
        type_: PERF_TYPE_HARDWARE,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config,
        read_format: PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING,
        flags: FLAG_DISABLED | FLAG_INHERIT | FLAG_ENABLE_ON_EXEC | FLAG_EXCLUDE_HV,
        ..Default::default()
    };
    if exclude_kernel {
        attr.flags |= FLAG_EXCLUDE_KERNEL;
    }
    // SAFETY: `attr` is a live, correctly sized perf_event_attr; pid 0 = this process, cpu -1 =
    // any CPU, no group.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            0 as libc::pid_t,
            -1 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        // SAFETY: reading errno right after the failed call.
        Err(unsafe { *libc::__errno_location() })
    } else {
        Ok(fd as RawFd)
    }
}

/// Runs in the forked child before exec: async-signal-safe (no allocation, syscalls only).
/// Never fails the spawn: refusals are sent as errno values.
pub(crate) fn child_open_and_send(sock: RawFd) {
    // payload: [errno instructions, errno cycles, user_only]
    let mut payload = [0i32; 3];
    let mut fds = [-1 as RawFd; 2];
    let mut n_fds = 0usize;
    let mut sent = [-1 as RawFd; 2];
    for (i, config) in EVENTS.iter().enumerate() {
        let opened = match open_event(*config, payload[2] != 0) {
            Err(e) if (e == libc::EACCES || e == libc::EPERM) && payload[2] == 0 => {
                payload[2] = 1;
                open_event(*config, true)
            }
            other => other,
        };
        match opened {
            Ok(fd) => {
                fds[i] = fd;
                sent[n_fds] = fd;
                n_fds += 1;
            }
            Err(e) => payload[i] = e,
        }
    }
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: std::mem::size_of_val(&payload),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: zeroed msghdr is valid; all pointers set below point to live stack buffers that
    // outlive sendmsg; the cmsg buffer is 64 bytes, more than CMSG_SPACE(8).
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if n_fds > 0 {
            let data_len = (n_fds * std::mem::size_of::<RawFd>()) as u32;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(data_len) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
            std::ptr::copy_nonoverlapping(
                sent.as_ptr(),
                libc::CMSG_DATA(cmsg).cast::<RawFd>(),
                n_fds,
            );
        }
        libc::sendmsg(sock, &msg, 0);
        for fd in fds {
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
}

/// What the parent received: the event fds (or why each is missing).
#[derive(Debug)]
pub(crate) struct Received {
    events: [Result<OwnedFd, i32>; 2],
    user_only: bool,
}

/// Receive the child's message (already queued: `spawn` returns after the exec).
pub(crate) fn receive(sock: &OwnedFd) -> Received {
    let mut payload = [0i32; 3];
    let mut iov = libc::iovec {
        iov_base: payload.as_mut_ptr().cast(),
        iov_len: std::mem::size_of_val(&payload),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: zeroed msghdr is valid; pointers refer to live stack buffers.
    let (n, fds) = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(
            sock.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        );
        let mut fds: Vec<OwnedFd> = Vec::new();
        if n > 0 {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                    for i in 0..bytes / std::mem::size_of::<RawFd>() {
                        fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        (n, fds)
    };
    let mut fds = fds.into_iter();
    if n != std::mem::size_of_val(&payload) as isize {
        return Received {
            events: [Err(libc::EPROTO), Err(libc::EPROTO)],
            user_only: false,
        };
    }
    let mut next = |errno: i32| {
        if errno == 0 {
            fds.next().ok_or(libc::EPROTO)
        } else {
            Err(errno)
        }
    };
    let events = [next(payload[0]), next(payload[1])];
    Received {
        events,
        user_only: payload[2] != 0,
    }
}

/// Read the counts after the child was reaped.
pub(crate) fn read(received: &Received) -> Counters {
    let mut out = Counters {
        user_only: received.user_only,
        ..Default::default()
    };
    let mut why = Vec::new();
    for (i, ev) in received.events.iter().enumerate() {
        let value = match ev {
            Err(errno) => Err(io::Error::from_raw_os_error(*errno).to_string()),
            Ok(fd) => read_scaled(fd, &mut out.scaled),
        };
        match value {
            Ok(v) => {
                if i == 0 {
                    out.instructions = Some(v)
                } else {
                    out.cycles = Some(v)
                }
            }
            Err(e) => why.push(format!("{}: {e}", EVENT_NAMES[i])),
        }
    }
    if !why.is_empty() {
        out.unavailable = Some(why.join("; "));
    }
    out
}

fn read_scaled(fd: &OwnedFd, scaled: &mut bool) -> Result<u64, String> {
    let mut buf = [0u64; 3];
    // SAFETY: reads at most 24 bytes into a live 24-byte buffer.
    let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 24) };
    if n != 24 {
        return Err(format!("read returned {n}: {}", io::Error::last_os_error()));
    }
    let [value, enabled, running] = buf;
    if running == 0 || value == 0 {
        return Err("counter never ran (no PMU time for this event)".into());
    }
    if running < enabled {
        *scaled = true;
        return Ok((value as u128 * enabled as u128 / running as u128) as u64);
    }
    Ok(value)
}

/// Counters for a run that did not request them, or for which the hand-over failed.
pub(crate) fn unavailable(why: impl Into<String>) -> Counters {
    Counters {
        unavailable: Some(why.into()),
        ..Default::default()
    }
}
