//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection`:
//! several servers can run the controller manager and the scheduler, and only the holder of
//! the lease (`kube-system/kube-controller-manager`, `kube-system/kube-scheduler`) acts.
//!
//! A candidate takes the lease when it is free or expired (`renewTime + leaseDurationSeconds`
//! in the past), renews it every `retry_period`, and gives up leading — cancelling the work —
//! when it could not renew for `renew_deadline`. Writes are compare-and-swap on the
//! resourceVersion, so two candidates never both win.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Timing of an election (client-go's defaults: 15 s, 10 s, 2 s).
#[derive(Clone, Debug)]
pub struct LeaderElection {
    pub namespace: String,
    pub name: String,
    /// Who we are (hostname plus a random suffix, upstream's form).
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElection {
    pub fn new(name: &str, identity: &str) -> Self {
        LeaderElection {
            namespace: "kube-system".into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Run `work` whenever we lead, until `shutdown`. `work` gets a token cancelled when the
    /// lease is lost; it is started again when it is won back.
    pub async fn run<F, Fut>(self, client: kube::Client, shutdown: CancellationToken, work: F)
    where
        F: Fn(CancellationToken) -> Fut,
        Fut: Future<Output = ()>,
    {
        let api: Api<Lease> = Api::namespaced(client, &self.namespace);
        loop {
            // Campaign.
            loop {
                match self.try_acquire_or_renew(&api).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => tracing::debug!(lease = %self.name, error = %e, "leader election attempt failed"),
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(self.retry_period) => {}
                }
            }
            tracing::info!(lease = %self.name, identity = %self.identity, "became leader");
            let lost = shutdown.child_token();
            let renew = async {
                let mut last_ok = Instant::now();
                loop {
                    tokio::select! {
                        _ = lost.cancelled() => return,
                        _ = tokio::time::sleep(self.retry_period) => {}
                    }
                    match self.try_acquire_or_renew(&api).await {
                        Ok(true) => last_ok = Instant::now(),
                        Ok(false) => {
                            tracing::warn!(lease = %self.name, "another candidate holds the lease; stepping down");
                            lost.cancel();
                            return;
                        }
                        Err(e) if last_ok.elapsed() >= self.renew_deadline => {
                            tracing::warn!(lease = %self.name, error = %e, "could not renew the lease; stepping down");
                            lost.cancel();
                            return;
                        }
                        Err(_) => {}
                    }
                }
            };
            tokio::join!(renew, async {
                work(lost.clone()).await;
                lost.cancel();
            });
            if shutdown.is_cancelled() {
                self.release(&api).await;
                return;
            }
        }
    }

    /// Take the lease if it is ours, free or expired; true if we hold it afterwards.
    async fn try_acquire_or_renew(&self, api: &Api<Lease>) -> kube::Result<bool> {
        let now = MicroTime(Timestamp::now());
        let duration = self.lease_duration.as_secs() as i32;
        let Some(mut lease) = api.get_opt(&self.name).await? else {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": duration,
                         "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
            }))
            .map_err(kube::Error::SerdeError)?;
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(Default::default);
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.identity;
        if !ours && !holder.is_empty() {
            let expires = spec.renew_time.as_ref().map(|t| t.0.as_second()).unwrap_or(0)
                + i64::from(spec.lease_duration_seconds.unwrap_or(duration));
            if expires > now.0.as_second() {
                return Ok(false);
            }
        }
        if !ours {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.renew_time = Some(now);
        spec.lease_duration_seconds = Some(duration);
        // The resourceVersion in the object makes the replace a compare-and-swap.
        match api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// On a clean shutdown, hand the lease back so another candidate takes over at once.
    async fn release(&self, api: &Api<Lease>) {
        let Ok(Some(mut lease)) = api.get_opt(&self.name).await else { return };
        let Some(spec) = lease.spec.as_mut() else { return };
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        let _ = api.replace(&self.name, &PostParams::default(), &lease).await;
    }
}
