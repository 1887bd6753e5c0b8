"""A real single-node Apache Kafka broker (KRaft), resolved from Maven Central, run with Java."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from confluent_kafka import KafkaException

from bigbrotr.config import DevStackSettings
from bigbrotr.devstack.process import (
    ManagedProcess,
    alive,
    ensure_port_free,
    port_open,
    run_checked,
    wait_for,
)
from bigbrotr.errors import StackError
from bigbrotr.topics import new_admin

HOST = "127.0.0.1"
POM = Path(__file__).with_name("pom.xml")

_LOG4J = """\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.controller=WARN
log4j.logger.state.change.logger=WARN
"""


class KafkaBroker:
    """Owns `<state>/kafka`: jars, config, data, logs and the broker's pid file."""

    def __init__(self, settings: DevStackSettings) -> None:
        self.settings = settings
        self.root = settings.state_dir / "kafka"
        self.libs = self.root / f"libs-{settings.kafka_version}"
        self.data = self.root / "data"
        self.logs = self.root / "logs"
        self.process = ManagedProcess(
            name="kafka",
            pid_file=self.root / "kafka.pid",
            log_file=self.logs / "stdout.log",
            marker=f"-Dbigbrotr.devstack={self.root}",
        )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.settings.kafka_port}"

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    def up(self) -> bool:
        """Start the broker unless it runs; True if this call started it."""
        running = self.process.running_pid()
        if running is not None:
            self._wait_ready(running)
            return False
        java = _require(
            "java", "Java 17+ is needed for Kafka: apt-get install -y openjdk-17-jre-headless"
        )
        ensure_port_free(
            HOST, self.settings.kafka_port, "dev.kafka_port (BIGBROTR_DEV__KAFKA_PORT)"
        )
        ensure_port_free(
            HOST,
            self.settings.kafka_controller_port,
            "dev.kafka_controller_port (BIGBROTR_DEV__KAFKA_CONTROLLER_PORT)",
        )
        self._resolve_jars()
        properties = self._write_config()
        if not (self.data / "meta.properties").exists():
            # One id in 64 starts with "-"; only the `--cluster-id=` form keeps argparse from
            # reading it as an option.
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            run_checked(
                [
                    *self._java_cmd(java),
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(properties),
                ],
                "formatting Kafka storage",
                self.logs / "setup.log",
            )
        pid = self.process.start(
            [
                *self._java_cmd(java),
                f"-Xmx{self.settings.kafka_heap}",
                "kafka.Kafka",
                str(properties),
            ]
        )
        self._wait_ready(pid)
        return True

    def down(self) -> bool:
        return self.process.stop()

    def running(self) -> bool:
        return self.process.running_pid() is not None and port_open(HOST, self.settings.kafka_port)

    def _java_cmd(self, java: str) -> list[str]:
        return [
            java,
            self.process.marker,
            f"-Dlog4j.configuration=file:{self.root / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.logs}",
            "-cp",
            f"{self.libs}/*",
        ]

    def _resolve_jars(self) -> None:
        if any(self.libs.glob("kafka_2.13-*.jar")):
            return
        mvn = _require(
            "mvn", "Maven is needed to fetch Kafka from Maven Central: apt-get install -y maven"
        )
        staging = self.libs.with_name(self.libs.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        run_checked(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(POM),
                "dependency:copy-dependencies",
                f"-Dkafka.version={self.settings.kafka_version}",
                f"-DoutputDirectory={staging}",
            ],
            f"resolving Kafka {self.settings.kafka_version} from Maven Central",
            self.logs / "setup.log",
        )
        staging.rename(self.libs)

    def _write_config(self) -> Path:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        (self.root / "log4j.properties").write_text(_LOG4J)
        port, controller = self.settings.kafka_port, self.settings.kafka_controller_port
        properties = self.root / "server.properties"
        properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{HOST}:{controller}",
                    f"listeners=PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller}",
                    f"advertised.listeners=PLAINTEXT://{HOST}:{port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.data}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=10",
                    "group.initial.rebalance.delay.ms=0",
                    "",
                ]
            )
        )
        return properties

    def _wait_ready(self, pid: int) -> None:
        def ready() -> bool:
            if not alive(pid):
                raise StackError(f"Kafka exited during start-up; see {self.server_log}")
            return port_open(HOST, self.settings.kafka_port) and _broker_answers(self.bootstrap)

        if not wait_for(ready, self.settings.start_timeout_s, interval_s=0.5):
            raise StackError(
                f"Kafka did not accept connections on {self.bootstrap} within "
                f"{self.settings.start_timeout_s:.0f}s; see {self.server_log}"
            )


def _broker_answers(bootstrap: str) -> bool:
    try:
        new_admin(bootstrap).list_topics(timeout=2)
    except KafkaException:
        return False
    return True


def _require(tool: str, advice: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"`{tool}` was not found on PATH. {advice}")
    if tool == "java":
        _check_java_version(path)
    return path


def _check_java_version(java: str) -> None:
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    try:
        major = int(out.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        return
    if major < 17:
        raise StackError(
            f"Java {major} found, Kafka needs 17+: apt-get install -y openjdk-17-jre-headless"
        )
