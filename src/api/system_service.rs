//! `taskd.v1.SystemService` over the ResourceMonitor and the engine.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::api::proto;
use crate::api::proto::system_service_server::SystemService;
use crate::api::status::to_status;
use crate::api::system_convert::{alert_to_proto, current_load};
use crate::engine::{EngineError, TaskManager};
use crate::monitor::{MonitorEvent, ResourceMonitor};

/// The gRPC face of the ResourceMonitor.
pub struct SystemServiceHandler {
    monitor: ResourceMonitor,
    manager: TaskManager,
    stopping: CancellationToken,
}

impl SystemServiceHandler {
    pub fn new(monitor: ResourceMonitor, manager: TaskManager, stopping: CancellationToken) -> Self {
        SystemServiceHandler {
            monitor,
            manager,
            stopping,
        }
    }
}

type SystemEventStream = Pin<Box<dyn Stream<Item = Result<proto::SystemEvent, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl SystemService for SystemServiceHandler {
    async fn get_system_load(
        &self,
        _request: Request<proto::GetSystemLoadRequest>,
    ) -> Result<Response<proto::SystemLoad>, Status> {
        Ok(Response::new(current_load(&self.monitor, &self.manager)))
    }

    async fn list_alerts(
        &self,
        request: Request<proto::ListAlertsRequest>,
    ) -> Result<Response<proto::ListAlertsResponse>, Status> {
        let limit = match request.get_ref().limit {
            0 => 100,
            limit @ 1..=1000 => limit as usize,
            other => {
                return Err(to_status(EngineError::invalid(
                    "limit",
                    format!("{other} is outside 1..=1000"),
                )));
            }
        };
        let (active, recent) = self.monitor.alerts(limit);
        Ok(Response::new(proto::ListAlertsResponse {
            active: active.iter().map(alert_to_proto).collect(),
            recent: recent.iter().map(alert_to_proto).collect(),
        }))
    }

    type WatchSystemStream = SystemEventStream;

    async fn watch_system(
        &self,
        request: Request<proto::WatchSystemRequest>,
    ) -> Result<Response<SystemEventStream>, Status> {
        let slot = crate::api::access::open_watch(request.extensions().get()).map_err(Status::resource_exhausted)?;
        let monitor = self.monitor.clone();
        let manager = self.manager.clone();
        let events = BroadcastStream::new(self.monitor.subscribe()).map(move |event| {
            use proto::system_event::Kind;
            let message = match event {
                Ok(MonitorEvent::Sampled(_)) => proto::SystemEvent {
                    kind: Kind::Sampled as i32,
                    load: Some(current_load(&monitor, &manager)),
                    ..Default::default()
                },
                Ok(MonitorEvent::AlertRaised(alert)) => proto::SystemEvent {
                    kind: Kind::AlertRaised as i32,
                    alert: Some(alert_to_proto(&alert)),
                    ..Default::default()
                },
                Ok(MonitorEvent::AlertCleared(alert)) => proto::SystemEvent {
                    kind: Kind::AlertCleared as i32,
                    alert: Some(alert_to_proto(&alert)),
                    ..Default::default()
                },
                Err(BroadcastStreamRecvError::Lagged(missed)) => proto::SystemEvent {
                    kind: Kind::Lagged as i32,
                    missed,
                    ..Default::default()
                },
            };
            Ok(message)
        });
        let stopping = self.stopping.clone().cancelled_owned();
        Ok(Response::new(Box::pin(crate::api::access::holding_slot(
            events.take_until(stopping),
            slot,
        ))))
    }
}
