//! One guardian replica's leader election running in a test, whatever the
//! backend (a Lease elector, a Redis lock): stopped cleanly, or killed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use guardian::leader::Leadership;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::eventually::eventually;

pub struct Replica<L> {
    pub lock: Arc<L>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl<L: Leadership> Replica<L> {
    /// Spawns `run(lock, stop)`, the backend's election loop.
    pub fn start<F>(lock: Arc<L>, run: impl FnOnce(Arc<L>, CancellationToken) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(lock.clone(), stop.clone()));
        Self { lock, stop, task }
    }

    pub fn leads(&self) -> bool {
        self.lock.is_leader()
    }

    /// Clean: cancel and wait for the loop to return, release included.
    pub async fn stop(self) -> Arc<L> {
        self.stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.task).await.expect("run returns after stop").unwrap();
        self.lock
    }

    /// A kill (or a frozen process): the loop ends mid-flight, nothing is released or renewed.
    pub fn kill(&self) {
        self.task.abort();
    }
}

pub async fn leading<L: Leadership>(replica: &Replica<L>, within: Duration) {
    eventually(within, "the replica leads", || async { replica.leads() }).await;
}

pub async fn knows_holder<L: Leadership>(replica: &Replica<L>, holder: &str) {
    let want = Some(holder.to_owned());
    eventually(Duration::from_secs(2), "the replica knows the holder", || async { replica.lock.holder() == want })
        .await;
}
