"""A stand-in hub process: marks itself running until SIGTERM, or exits with a given code.

usage: fake_hub.py MARKER_FILE [EXIT_CODE]

$FAKE_HUB_STOP_SECONDS: seconds it keeps running (marker present) after SIGTERM, as a hub
finishing its shutdown does; $FAKE_HUB_IGNORE_SIGTERM=1: it ignores SIGTERM (only SIGKILL
stops it, leaving the marker behind).
"""

import os
import signal
import sys
import threading
from pathlib import Path

marker = Path(sys.argv[1])
stop = threading.Event()
if os.environ.get("FAKE_HUB_IGNORE_SIGTERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
marker.write_text(str(os.getpid()))
if len(sys.argv) > 2:
    marker.unlink()
    sys.exit(int(sys.argv[2]))
stop.wait()
threading.Event().wait(float(os.environ.get("FAKE_HUB_STOP_SECONDS", "0")))
marker.unlink()
