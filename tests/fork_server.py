"""A process that imports the heavy libraries once, then runs ``python -m autotrain_hydra`` commands in forked
children, so that a test can start (and kill) many short runs without paying ~5 s of imports for each.

It runs no torch operation itself (a fork after OpenMP started could hang the child). Protocol, one JSON object a
line on stdin/stdout: ``{"run": [args...], "cwd": dir, "log": file}`` → ``{"pid": n}``; ``{"wait": n}`` →
``{"code": exit code, or -signal}``; end of input ends the server.
"""

import json
import os
import sys

REPLIES = os.fdopen(os.dup(1), "w")  # the protocol's channel; anything else printed goes to stderr
os.dup2(2, 1)

import accelerate  # noqa: F401  (imported here once: the children get them for free)
import datasets  # noqa: F401
import matplotlib.pyplot  # noqa: F401
import peft  # noqa: F401
import torch  # noqa: F401
import transformers  # noqa: F401
import trl  # noqa: F401
from transformers import (AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM, Trainer,  # noqa: F401
                          TrainingArguments)

from autotrain_hydra import app
from autotrain_hydra.trainers import generic, sft  # noqa: F401


def child(args, cwd, log):
    os.chdir(cwd)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.argv = ["autotrain_hydra", *args]
    try:
        code = app.main(list(args))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:  # noqa: BLE001  (a bug: its traceback is in the log)
        import traceback

        traceback.print_exc()
        code = 99
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def main():
    for line in sys.stdin:
        request = json.loads(line)
        if "run" in request:
            pid = os.fork()
            if pid == 0:
                child(request["run"], request["cwd"], request["log"])
            reply = {"pid": pid}
        else:
            _, status = os.waitpid(request["wait"], 0)
            reply = {"code": os.waitstatus_to_exitcode(status)}
        REPLIES.write(json.dumps(reply) + "\n")
        REPLIES.flush()


if __name__ == "__main__":
    main()
