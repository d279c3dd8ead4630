//! Real-time scheduling for the live inference thread. Without it a busy machine (a separation
//! running beside `live`) takes the core away for longer than the output buffer lasts, and the
//! listener hears a click. The thread asks for SCHED_FIFO at the lowest real-time priority: above
//! every normal thread (a separation or a training job beside it), below every thread of the audio
//! server and its clients (JACK gives its clients priority 5 under a server at 10), which must
//! never wait for inference: at an equal priority a burst of inference could hold a core that a
//! client thread needs. Where the system refuses (no CAP_SYS_NICE, no rtprio limit) it says why
//! and runs as before.

use thread_priority::{
    RealtimeThreadSchedulePolicy, ThreadPriority, ThreadPriorityValue, ThreadSchedulePolicy,
    set_thread_priority_and_policy, thread_native_id,
};

/// SCHED_FIFO priority of the inference thread: the lowest real-time one.
pub const INFERENCE_PRIORITY: u8 = 1;

/// Whether the calling thread got real-time scheduling, and how it was asked for or why not.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RealtimeStatus {
    pub granted: bool,
    pub detail: String,
}

/// Asks for SCHED_FIFO at [`INFERENCE_PRIORITY`] for the calling thread.
pub fn promote_current_thread() -> RealtimeStatus {
    let priority = match ThreadPriorityValue::try_from(INFERENCE_PRIORITY) {
        Ok(v) => ThreadPriority::Crossplatform(v),
        Err(e) => return RealtimeStatus { granted: false, detail: e.to_string() },
    };
    let policy = ThreadSchedulePolicy::Realtime(RealtimeThreadSchedulePolicy::Fifo);
    match set_thread_priority_and_policy(thread_native_id(), priority, policy) {
        Ok(()) => RealtimeStatus { granted: true, detail: format!("SCHED_FIFO priority {INFERENCE_PRIORITY}") },
        Err(e) => RealtimeStatus {
            granted: false,
            detail: format!(
                "SCHED_FIFO refused ({e:?}); running at normal priority (allow it with an rtprio limit or CAP_SYS_NICE)"
            ),
        },
    }
}
