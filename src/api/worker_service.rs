//! `taskd.v1.WorkerService` over the engine: a worker's stream becomes a
//! session of the engine, and each of its messages a call on it.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use futures::future::join_all;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::api::convert::{duration_to_proto, within};
use crate::api::proto;
use crate::api::proto::work_request::Message as Inbound;
use crate::api::proto::work_response::Message as Outbound;
use crate::api::proto::worker_service_server::WorkerService;
use crate::api::status::to_status;
use crate::api::worker_convert;
use crate::engine::executor::remote::{Session, ToWorker, WorkerConnection};
use crate::engine::{EngineError, Workers};

/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// Messages buffered towards a worker that reads slowly.
const OUTBOX: usize = 1024;

type WorkStream = Pin<Box<dyn Stream<Item = Result<proto::WorkResponse, Status>> + Send + 'static>>;

/// The gRPC face of the engine for workers.
pub struct WorkerServiceHandler {
    workers: Workers,
    /// When the server stops, every worker is asked to drain.
    stopping: CancellationToken,
}

impl WorkerServiceHandler {
    pub fn new(workers: Workers, stopping: CancellationToken) -> Self {
        WorkerServiceHandler { workers, stopping }
    }
}

#[tonic::async_trait]
impl WorkerService for WorkerServiceHandler {
    type WorkStream = WorkStream;

    async fn work(&self, request: Request<Streaming<proto::WorkRequest>>) -> Result<Response<WorkStream>, Status> {
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("hello: no WorkerHello within 10s of opening the stream"))??;
        let hello = match first.and_then(|request| request.message) {
            Some(Inbound::Hello(hello)) => hello,
            _ => {
                return Err(Status::invalid_argument(
                    "hello: the first message of a Work stream must be a WorkerHello",
                ));
            }
        };
        let (connection, instructions) = self
            .workers
            .connect(worker_convert::hello(hello))
            .await
            .map_err(|error| to_status(within("hello", error)))?;
        let (outbox, responses) = mpsc::channel(OUTBOX);
        let lease_duration = connection.lease_duration();
        let welcome = proto::Welcome {
            worker_id: connection.worker_id().to_string(),
            lease_duration: Some(duration_to_proto(lease_duration)),
            renew_interval: Some(duration_to_proto(connection.renew_interval())),
        };
        outbox
            .send(Ok(proto::WorkResponse {
                message: Some(Outbound::Welcome(welcome)),
            }))
            .await
            .map_err(|_| Status::cancelled("the worker hung up"))?;
        tokio::spawn(drive(connection, inbound, instructions, outbox, self.stopping.clone()));
        Ok(Response::new(Box::pin(ReceiverStream::new(responses))))
    }

    async fn finish_attempt(
        &self,
        request: Request<proto::FinishAttemptRequest>,
    ) -> Result<Response<proto::FinishAttemptResponse>, Status> {
        let result = request
            .into_inner()
            .result
            .ok_or_else(|| to_status(EngineError::invalid("result", "is required")))?;
        let (lease, end) = worker_convert::attempt_result(&result, "result.").map_err(to_status)?;
        let status = self.workers.finish_attempt(lease, end).await.map_err(to_status)?;
        Ok(Response::new(proto::FinishAttemptResponse {
            status: crate::api::convert::status_to_proto(status) as i32,
        }))
    }

    async fn renew_leases(
        &self,
        request: Request<proto::RenewLeasesRequest>,
    ) -> Result<Response<proto::RenewLeasesResponse>, Status> {
        let leases = parse_leases(&request.into_inner(), "leases").map_err(to_status)?;
        let renewed = self.workers.renew_leases(leases.clone()).await.map_err(to_status)?;
        Ok(Response::new(renewal_answer(&leases, renewed)))
    }

    async fn report_progress(
        &self,
        request: Request<proto::ReportProgressRequest>,
    ) -> Result<Response<proto::ReportProgressResponse>, Status> {
        let report = request
            .into_inner()
            .report
            .ok_or_else(|| to_status(EngineError::invalid("report", "is required")))?;
        let (lease, progress) = worker_convert::progress_report(&report, "report.").map_err(to_status)?;
        self.workers.report_progress(lease, progress).await.map_err(to_status)?;
        Ok(Response::new(proto::ReportProgressResponse {}))
    }

    async fn list_workers(
        &self,
        _request: Request<proto::ListWorkersRequest>,
    ) -> Result<Response<proto::ListWorkersResponse>, Status> {
        Ok(Response::new(proto::ListWorkersResponse {
            workers: self
                .workers
                .list()
                .iter()
                .map(worker_convert::worker_to_proto)
                .collect(),
        }))
    }
}

fn parse_leases(request: &proto::RenewLeasesRequest, field: &str) -> Result<Vec<crate::model::LeaseRef>, EngineError> {
    request
        .leases
        .iter()
        .enumerate()
        .map(|(index, lease)| worker_convert::lease_ref(&format!("{field}[{index}]"), Some(lease)))
        .collect()
}

fn renewal_answer(
    leases: &[crate::model::LeaseRef],
    renewed: Vec<Result<crate::model::Timestamp, crate::model::LeaseLost>>,
) -> proto::RenewLeasesResponse {
    proto::RenewLeasesResponse {
        outcomes: leases
            .iter()
            .zip(renewed)
            .map(|(lease, result)| worker_convert::renew_outcome(lease, result))
            .collect(),
    }
}

type Outbox = mpsc::Sender<Result<proto::WorkResponse, Status>>;

/// Moves one worker's messages between its stream and its session until
/// either side ends, then closes the session.
async fn drive(
    connection: WorkerConnection,
    mut inbound: Streaming<proto::WorkRequest>,
    mut instructions: mpsc::UnboundedReceiver<ToWorker>,
    outbox: Outbox,
    stopping: CancellationToken,
) {
    let session = connection.session().clone();
    let why = loop {
        tokio::select! {
            instruction = instructions.recv() => {
                let Some(instruction) = instruction else { break "lost its session" };
                let message = match instruction {
                    ToWorker::Assigned(tasks) => Outbound::Tasks(worker_convert::assigned(&tasks)),
                    ToWorker::Revoked { lease, reason } => Outbound::Revoked(worker_convert::revoked(&lease, &reason)),
                    ToWorker::Drained => Outbound::Drained(proto::Drained {}),
                };
                if outbox.send(Ok(proto::WorkResponse { message: Some(message) })).await.is_err() {
                    break "hung up";
                }
            }
            received = inbound.message() => match received {
                Ok(Some(request)) => {
                    if let Err(status) = handle(&session, request, &outbox) {
                        let _ = outbox.send(Err(status)).await;
                        break "sent a message it may not send";
                    }
                }
                Ok(None) => break "closed its stream",
                Err(status) => match protocol_error(&status) {
                    Some(answer) => {
                        let _ = outbox.send(Err(answer)).await;
                        break "sent a message that breaks the protocol";
                    }
                    None => break "lost its connection",
                },
            },
            _ = stopping.cancelled(), if !session.is_draining() => session.drain(),
            _ = session.closed() => {
                let _ = outbox.send(Err(Status::unavailable("taskd is stopping; reconnect later"))).await;
                break "lost its server";
            }
            _ = outbox.closed() => break "hung up",
        }
    };
    connection.close(why).await;
}

/// What to tell a worker whose stream failed with `status`, when the fault
/// is in what it sent (a message that does not decode, or one over the
/// size limit) rather than in the connection: the stream must not end as if
/// all were well.
fn protocol_error(status: &Status) -> Option<Status> {
    match status.code() {
        // Our codec's answer to bytes that are not a WorkRequest.
        tonic::Code::InvalidArgument => Some(Status::invalid_argument(format!("message: {}", status.message()))),
        // tonic's answer to a message over the size limit.
        tonic::Code::OutOfRange => Some(Status::resource_exhausted(format!(
            "message: too large: {}",
            status.message()
        ))),
        _ => None,
    }
}

/// Acts on one message of the worker. An error ends the stream.
fn handle(session: &Arc<Session>, request: proto::WorkRequest, outbox: &Outbox) -> Result<(), Status> {
    match request.message {
        Some(Inbound::Finish(finish)) => {
            // Each finish is under way from here; the answers go out together.
            let finishing: Vec<_> = finish
                .results
                .iter()
                .enumerate()
                .map(|(index, result)| {
                    let place = format!("finish.results[{index}]");
                    let parsed = worker_convert::attempt_result(result, &format!("{place}."));
                    let lease = result
                        .lease
                        .as_ref()
                        .and_then(|lease| worker_convert::lease_ref("lease", Some(lease)).ok());
                    match parsed {
                        Ok((lease, end)) => {
                            let finishing = session.finish(lease, end);
                            futures::future::Either::Left(async move {
                                (Some(lease), finishing.await.map_err(|error| within(&place, error)))
                            })
                        }
                        Err(error) => futures::future::Either::Right(async move { (lease, Err(error)) }),
                    }
                })
                .collect();
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let outcomes = join_all(finishing)
                    .await
                    .into_iter()
                    .map(|(lease, answer)| match lease {
                        Some(lease) => worker_convert::finish_outcome(&lease, answer),
                        None => proto::FinishOutcome {
                            refusal: answer.err().map(|error| worker_convert::refusal(&error)),
                            ..Default::default()
                        },
                    })
                    .collect();
                let _ = outbox
                    .send(Ok(proto::WorkResponse {
                        message: Some(Outbound::Finished(proto::AttemptsFinished { outcomes })),
                    }))
                    .await;
            });
            Ok(())
        }
        Some(Inbound::Renew(renew)) => {
            let leases = parse_leases(&renew, "renew.leases").map_err(to_status)?;
            let session = session.clone();
            let outbox = outbox.clone();
            tokio::spawn(async move {
                let message = match session.renew(leases.clone()).await {
                    Ok(renewed) => Ok(proto::WorkResponse {
                        message: Some(Outbound::Renewed(renewal_answer(&leases, renewed))),
                    }),
                    Err(error) => Err(to_status(error)),
                };
                let _ = outbox.send(message).await;
            });
            Ok(())
        }
        Some(Inbound::Progress(report)) => {
            let (lease, progress) = worker_convert::progress_report(&report, "progress.").map_err(to_status)?;
            session
                .progress(&lease, progress)
                .map_err(|error| to_status(within("progress", error)))
        }
        Some(Inbound::Drain(_)) => {
            session.drain();
            Ok(())
        }
        Some(Inbound::Hello(_)) => Err(Status::invalid_argument(
            "hello: a Work stream says hello once, in its first message",
        )),
        None => Err(Status::invalid_argument("message: empty WorkRequest")),
    }
}
