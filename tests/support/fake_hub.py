"""A stand-in hub process: marks itself running until SIGTERM, or exits with a given code.

usage: fake_hub.py MARKER_FILE [EXIT_CODE]
"""

import signal
import sys
import threading
from pathlib import Path

marker = Path(sys.argv[1])
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
marker.write_text("running")
if len(sys.argv) > 2:
    marker.unlink()
    sys.exit(int(sys.argv[2]))
stop.wait()
marker.unlink()
