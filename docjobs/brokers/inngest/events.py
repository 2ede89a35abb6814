"""What docjobs' events to Inngest carry, and the events that steer a run: one contract for both ends.

The broker writes these fields and sends these events; the functions read them.
"""

from __future__ import annotations

#: Event fields docjobs adds beside the payload (options and positional arguments only when there are any).
MESSAGE_ID_FIELD = "messageId"
RUN_AT_FIELD = "runAt"
OPTIONS_FIELD = "messageOptions"
ARGS_FIELD = "messageArgs"
#: The message option holding Inngest's run id (kept in the job's history, shown on the board).
RUN_ID_OPTION = "inngest_run_id"
#: The event that cancels the run of the job whose message id it carries (the board sends it).
CANCEL_EVENT = "docjobs/job.cancel"
#: The event that ends the delay of the job whose message id it carries (the board sends it).
PROMOTE_EVENT = "docjobs/job.promote"
#: The event that lets the runs held by a resumed queue go on (the board sends it).
RESUME_EVENT = "docjobs/queue.resume"
QUEUE_FIELD = "queue"
#: The event of a cron trigger's runs (its data is not the job's payload).
SCHEDULED_EVENT = "inngest/scheduled.timer"
