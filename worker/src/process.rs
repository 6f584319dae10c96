//! A child process in its own process group, so that a job's whole process tree (the shell, the
//! program, the data loaders it forks) is signalled and reaped as one.

use std::io;
use std::process::{Child, ChildStdout, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::executor::CancelFlag;

/// How often a waiting job checks its process, its deadline and its cancel flag.
const POLL: Duration = Duration::from_millis(20);

/// Sends `signal` to every process in group `pgid` (`0` only checks that the group exists).
#[allow(unsafe_code)]
fn signal_group(pgid: i32, signal: i32) -> io::Result<()> {
    // Never let a bad id turn into kill(0, ..) (our own group) or kill(-1, ..) (everything).
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: kill(2) takes two integers and reads or writes no memory of this process; the
    // negative pid addresses only the process group this module created for the job.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether any process of group `pgid` is still alive (zombies awaiting their reaper count).
fn group_alive(pgid: i32) -> bool {
    match signal_group(pgid, 0) {
        Ok(()) => true,
        Err(e) => e.raw_os_error() != Some(libc::ESRCH),
    }
}

/// How a group child ended.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The leader exited on its own.
    Exited(ExitStatus),
    /// The deadline passed; the group was terminated.
    TimedOut,
    /// The cancel flag was raised; the group was terminated.
    Cancelled,
}

/// A spawned process that leads its own process group. Dropping it kills the group.
#[derive(Debug)]
pub(crate) struct GroupChild {
    child: Child,
    pgid: i32,
    reaped: bool,
}

impl GroupChild {
    /// Spawns `cmd` as the leader of a new process group.
    pub(crate) fn spawn(mut cmd: Command) -> io::Result<Self> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        let child = cmd.spawn()?;
        let pgid = i32::try_from(child.id()).map_err(io::Error::other)?;
        Ok(Self {
            child,
            pgid,
            reaped: false,
        })
    }

    pub(crate) fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Waits for the leader to exit, terminating the group when `deadline` passes or `cancel` is
    /// raised (SIGTERM, then SIGKILL after `grace`). `tick` runs on every poll. Whatever way the
    /// leader ends, processes it left behind in the group are killed.
    pub(crate) fn wait(
        &mut self,
        deadline: Option<Instant>,
        cancel: &CancelFlag,
        grace: Duration,
        tick: &mut dyn FnMut(),
    ) -> io::Result<Ending> {
        loop {
            tick();
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                let _ = signal_group(self.pgid, libc::SIGKILL);
                return Ok(Ending::Exited(status));
            }
            if cancel.is_cancelled() {
                self.terminate(grace, tick)?;
                return Ok(Ending::Cancelled);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                self.terminate(grace, tick)?;
                return Ok(Ending::TimedOut);
            }
            std::thread::sleep(POLL);
        }
    }

    /// SIGTERM to the group; SIGKILL to whatever is left after `grace`; reaps the leader.
    fn terminate(&mut self, grace: Duration, tick: &mut dyn FnMut()) -> io::Result<()> {
        let _ = signal_group(self.pgid, libc::SIGTERM);
        let until = Instant::now() + grace;
        while Instant::now() < until {
            tick();
            if !self.reaped && self.child.try_wait()?.is_some() {
                self.reaped = true;
            }
            if self.reaped && !group_alive(self.pgid) {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
        let _ = signal_group(self.pgid, libc::SIGKILL);
        if !self.reaped {
            self.child.wait()?;
            self.reaped = true;
        }
        Ok(())
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = signal_group(self.pgid, libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}
