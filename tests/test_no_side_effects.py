"""Analysed code is read, never run: a hostile file does nothing, wherever its side effects sit.

vramlint runs on files of repositories its users do not control (a pull request, a clone opened in
the editor). The file below tries every way model code could act on the machine: shell commands,
subprocesses, writes, deletes, renames, network connections, `exec`/`eval`, unpickling, ctypes,
importing a helper whose top level writes a file, at module level, in a class body, in a default
argument, in a decorator, in `__init__`, in `forward` and in `__del__`. `vramlint check` runs on it
in a subprocess with an audit hook (PEP 578) installed before vramlint is imported, which records
every event by which Python itself would touch the outside world. The test asserts that none
happened, that the files beside it are untouched, that a listening socket was never connected to,
and that the contents of a file outside the workspace never reach the output.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

HOSTILE = '''\
import os, shutil, subprocess, socket, pickle, ctypes, importlib, builtins
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
os.system("touch {pwned}/system")
subprocess.run(["touch", "{pwned}/subprocess"])
subprocess.Popen("touch {pwned}/popen", shell=True)
open("{pwned}/written", "w").write("x")
os.remove("{victim}")
shutil.rmtree("{victim_dir}")
os.rename("{victim}", "{pwned}/renamed")
socket.create_connection(("127.0.0.1", {port}))
exec("open('{pwned}/exec', 'w').write('x')")
eval("__import__('os').system('touch {pwned}/eval')")
pickle.loads(b"cos\\nsystem\\n(S'touch {pwned}/pickle'\\ntR.")
ctypes.CDLL(None).system(b"touch {pwned}/ctypes")
importlib.import_module("evil_helper")
builtins.__import__("evil_helper")
SECRET = open("{secret}").read()
print(SECRET)


def decorate(f):
    os.system("touch {pwned}/decorator")
    return f


class Net(nn.Module):
    os.system("touch {pwned}/class_body")

    @decorate
    def __init__(self, width=os.system("touch {pwned}/default")):
        super().__init__()
        os.system("touch {pwned}/init")
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        os.system("touch {pwned}/forward")
        open("{pwned}/forward_write", "w").write(SECRET)
        return self.fc(x)

    def __del__(self):
        os.system("touch {pwned}/del")


model = Net()
y = model(torch.randn(2, 8))
'''

EVIL_HELPER = '''\
import os
open("{pwned}/helper_imported", "w").write("x")
os.system("touch {pwned}/helper_system")
'''

# Run vramlint under an audit hook that records the events by which Python acts on the outside
# world. Opening files for reading is what an analyser does; opening one for writing is not.
RUNNER = r'''
import json, os, sys
events = []
WATCH = ("os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "os.forkpty", "subprocess.Popen",
         "socket.connect", "socket.sendto", "socket.bind", "os.remove", "os.unlink", "os.rename", "os.rmdir",
         "os.mkdir", "shutil.rmtree", "shutil.move", "os.truncate", "os.chmod", "os.kill", "ctypes.dlopen",
         "ctypes.dlsym", "pickle.find_class", "urllib.Request", "webbrowser.open", "os.symlink", "os.link")
analysed = os.path.realpath(sys.argv[1])

def hook(event, args):
    if event in WATCH:
        events.append([event, repr(args)[:200]])
    elif event == "open":
        path, mode, flags = args
        writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
        if writes and not (isinstance(path, int) or str(path).startswith("/dev/")):
            events.append([event, repr(args)[:200]])
    elif event == "exec":
        # vramlint's own modules run as they are imported; code from the analysed folder never does.
        filename = getattr(args[0], "co_filename", "")
        if os.path.isabs(filename) and os.path.realpath(filename).startswith(os.path.dirname(analysed) + os.sep):
            events.append([event, filename])
    elif event == "import" and args[0] in ("hostile", "evil_helper"):
        events.append([event, args[0]])

sys.addaudithook(hook)
from vramlint.cli.main import main
try:
    code = main(["check", "--jobs", "1", "--format", "json", sys.argv[1]])
finally:
    sys.stdout.flush()
    sys.stderr.write("AUDIT " + json.dumps(events) + "\n")
sys.exit(code)
'''


def test_a_hostile_file_has_no_side_effect(tmp_path: Path) -> None:
    work = tmp_path / "repo"
    pwned = tmp_path / "pwned"
    work.mkdir()
    pwned.mkdir()
    victim = work / "victim.txt"
    victim.write_text("keep me")
    victim_dir = work / "victim_dir"
    victim_dir.mkdir()
    (victim_dir / "inside.txt").write_text("keep me too")
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("TOP-SECRET-4f1c9b")

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]

    values = {"pwned": pwned, "victim": victim, "victim_dir": victim_dir, "secret": secret, "port": port}
    (work / "hostile.py").write_text(HOSTILE.format(**values))
    (work / "evil_helper.py").write_text(EVIL_HELPER.format(**values))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(ROOT / "server")}
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(work / "hostile.py")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    try:
        listener.accept()
        connected = True
    except BlockingIOError:
        connected = False
    finally:
        listener.close()

    audit = [line for line in proc.stderr.splitlines() if line.startswith("AUDIT ")]
    assert audit, proc.stderr[-2000:]
    assert json.loads(audit[-1][len("AUDIT "):]) == []
    assert not connected
    assert sorted(p.name for p in pwned.iterdir()) == []
    assert victim.read_text() == "keep me"
    assert (victim_dir / "inside.txt").read_text() == "keep me too"
    assert sorted(p.name for p in work.iterdir()) == ["evil_helper.py", "hostile.py", "victim.txt", "victim_dir"]
    assert "TOP-SECRET" not in proc.stdout + proc.stderr
    # The analysis itself went through: the model was found and counted (8*4 + 4).
    doc = json.loads(proc.stdout)
    params = [m["params"]["total"] for f in doc["files"] for m in f["models"] if m["name"] == "model"]
    assert params == [36], proc.stdout[-2000:]
