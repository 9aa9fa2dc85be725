"""`python served_hello.py OUT`: serves a flow the way Prefect's docs do, every second,
until Ctrl-C; each run appends one line to OUT."""

import sys

from stead import flow, runtime


@flow(log_prints=True)
def hello(out: str, name: str = "world") -> None:
    line = f"hello {name} from {runtime.deployment.name}"
    print(line)
    with open(out, "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    hello.serve(name="hello-deployment", tags=["onboarding"], interval=1,
                parameters={"out": sys.argv[1], "name": "marvin"})
