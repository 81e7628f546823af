"""TensorBoard event files in ``runs/<run-id>/tb/`` through tensorboardX (no TensorFlow),
from the extra ``tunix-core[tensorboard]``; without it a run says so once and goes on.

``tensorboard --logdir runs`` shows every run, live: each call is written and flushed
before it returns (tensorboardX's ``SummaryWriter`` queues events for a background
thread, so its ``flush`` does not promise that; this writes synchronously instead). A
resumed run adds a new event file to the same folder and marks where its training
restarts, so TensorBoard drops the earlier attempt's steps from there on and the curves
stay single.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

INSTALL_HINT = "pip install 'tunix-core[tensorboard]'"


def installed() -> bool:
    """Whether tensorboardX, which writes the event files, can be imported."""
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        return False
    return True


class TensorBoardLogger:
    name = "tensorboard"

    def __init__(self, directory: Path) -> None:
        # Imported per run, not by the plugin module: `tunix --help` stays light.
        from tensorboardX.event_file_writer import EventsWriter
        from tensorboardX.proto.event_pb2 import Event, SessionLog
        from tensorboardX.proto.summary_pb2 import Summary

        self._event, self._session_log, self._summary = Event, SessionLog, Summary
        directory.mkdir(parents=True, exist_ok=True)
        # Event file names carry the second they were opened in; the nanosecond suffix
        # keeps a resume within that second from truncating the earlier file.
        self._writer = EventsWriter(str(directory / "events"), f".{time.time_ns()}")

    def training_starts(self, step: int) -> None:
        # TensorBoard's restart marker: events of earlier files at `step` or later are stale.
        start = self._session_log(status=self._session_log.START)
        self._write(self._event(wall_time=time.time(), step=step, session_log=start))

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        values = [self._summary.Value(tag=tag, simple_value=value) for tag, value in scalars.items()]
        self._write(self._event(wall_time=time.time(), step=step, summary=self._summary(value=values)))

    def close(self, status: str) -> None:
        self._writer.close()

    def _write(self, event: object) -> None:
        self._writer.write_event(event)
        self._writer.flush()
