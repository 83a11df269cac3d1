//! The two steps of a graceful stop, as every service sees them.
//!
//! 1. [`Shutdown::stop_accepting`]: accept nothing new (no new request, transfer or
//!    connection); what is in flight goes on.
//! 2. [`Shutdown::stop_now`]: the drain time is over; end what is still in flight (a TFTP
//!    transfer sends its client an ERROR, an HTTPS connection is closed) and return.
//!
//! A service's `serve` returns once nothing of its own is left running, which may be long
//! before `stop_now`.

use tokio::sync::watch;

/// How far the stop has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    Draining,
    Stopping,
}

/// What a serving service watches to know when to stop. Cloning is cheap; every clone sees
/// the same steps.
#[derive(Debug, Clone)]
pub struct Shutdown {
    phase: watch::Receiver<Phase>,
}

/// Starts the steps of a [`Shutdown`].
#[derive(Debug)]
pub struct ShutdownTrigger {
    phase: watch::Sender<Phase>,
}

impl Shutdown {
    /// A shutdown and the trigger that starts it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (trigger, shutdown) = netboot_service::Shutdown::new();
    /// assert!(!shutdown.is_draining());
    /// trigger.drain();
    /// shutdown.stop_accepting().await;
    /// trigger.stop();
    /// shutdown.stop_now().await;
    /// # }
    /// ```
    #[must_use]
    pub fn new() -> (ShutdownTrigger, Self) {
        let (sender, receiver) = watch::channel(Phase::Serving);
        (ShutdownTrigger { phase: sender }, Self { phase: receiver })
    }

    /// Resolves once the service must accept nothing new.
    pub async fn stop_accepting(&self) {
        self.reached(Phase::Draining).await;
    }

    /// Resolves once what is still in flight must end.
    pub async fn stop_now(&self) {
        self.reached(Phase::Stopping).await;
    }

    /// Whether the stop has begun (for health checks).
    #[must_use]
    pub fn is_draining(&self) -> bool {
        *self.phase.borrow() >= Phase::Draining
    }

    async fn reached(&self, phase: Phase) {
        let mut receiver = self.phase.clone();
        if receiver.wait_for(|now| *now >= phase).await.is_err() {
            // The trigger is gone without starting the stop: it never will.
            std::future::pending::<()>().await;
        }
    }

    /// A shutdown that follows this one and can also be started on its own, so a group of
    /// services (the all-in-one server) can stop the others when one fails. Must be called
    /// inside a tokio runtime.
    #[must_use]
    pub fn child(&self) -> (ShutdownTrigger, Self) {
        let (trigger, child) = Self::new();
        let mut parent = self.phase.clone();
        let follower = trigger.phase.clone();
        tokio::spawn(async move {
            loop {
                let phase = *parent.borrow_and_update();
                raise(&follower, phase);
                if phase == Phase::Stopping || parent.changed().await.is_err() {
                    return;
                }
            }
        });
        (trigger, child)
    }
}

impl ShutdownTrigger {
    /// Step 1: stop accepting new work.
    pub fn drain(&self) {
        self.raise(Phase::Draining);
    }

    /// Step 2: end what is in flight (implies step 1).
    pub fn stop(&self) {
        self.raise(Phase::Stopping);
    }

    fn raise(&self, phase: Phase) {
        raise(&self.phase, phase);
    }
}

/// Moves `sender` on to `phase` unless it is there or further already.
fn raise(sender: &watch::Sender<Phase>, phase: Phase) {
    sender.send_if_modified(|now| {
        let later = phase > *now;
        if later {
            *now = phase;
        }
        later
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_child_follows_its_parent_and_stops_alone() {
        let (parent_trigger, parent) = Shutdown::new();
        let (child_trigger, child) = parent.child();
        parent_trigger.drain();
        tokio::time::timeout(Duration::from_secs(5), child.stop_accepting())
            .await
            .unwrap();
        assert!(child.is_draining());
        // The child's own trigger stops it without the parent.
        child_trigger.stop();
        tokio::time::timeout(Duration::from_secs(5), child.stop_now())
            .await
            .unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(50), parent.stop_now())
            .await
            .is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn stopping_implies_draining_and_steps_never_go_back() {
        let (trigger, shutdown) = Shutdown::new();
        trigger.stop();
        trigger.drain();
        tokio::time::timeout(Duration::from_secs(5), shutdown.stop_accepting())
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), shutdown.stop_now())
            .await
            .unwrap();
    }
}
