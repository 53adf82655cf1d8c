"""Collects the workers' results in its state, keyed by job id, and answers for a job.

Two kinds of messages: a result from a worker (`{"job", "part", "parts", "words", "replica"}`),
stored; and a request `{"job": "<id>"}`, answered with the job's combined result once every part
is in (`"complete": true`), or with how far it got.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cortex.sdk import Agent, Message


class Aggregator(Agent):
    async def on_message(self, msg: Message) -> dict[str, Any] | None:
        body = msg.json()
        if "part" in body:
            await self._store(body)
            return None
        return await self._result(str(body["job"]))

    async def _store(self, result: dict[str, Any]) -> None:
        job, part = str(result["job"]), str(result["part"])

        def add(state: Any) -> Any:
            jobs = dict((state or {}).get("jobs", {}))
            entry = dict(jobs.get(job) or {"parts": result["parts"], "results": {}})
            # Keyed by part, so a result that arrives twice (a worker that was retried) is
            # stored once: counting would need the exactly-once delivery no system has.
            entry["results"] = {
                **entry["results"],
                part: {"words": result["words"], "replica": result["replica"]},
            }
            if len(entry["results"]) == entry["parts"] and not entry.get("complete"):
                entry["complete"] = True
                entry["completed_at"] = datetime.now(UTC).isoformat()
            jobs[job] = entry
            return {**(state or {}), "jobs": jobs}

        # update() re-reads and retries when another replica wrote in between, so results of one
        # job stored at the same moment are all kept (with concurrency > 1 or more replicas).
        view = await self.state.update(add)
        if view.value["jobs"][job].get("complete"):
            self.log.info("job complete", job=job)

    async def _result(self, job: str) -> dict[str, Any]:
        state = (await self.state.get()).value or {}
        entry = state.get("jobs", {}).get(job)
        if entry is None:
            return {"job": job, "complete": False, "done": 0, "parts": None}
        results = entry["results"]
        answer: dict[str, Any] = {
            "job": job,
            "complete": bool(entry.get("complete")),
            "done": len(results),
            "parts": entry["parts"],
        }
        if answer["complete"]:
            counts = [results[str(i)]["words"] for i in range(entry["parts"])]
            answer.update(
                words=sum(counts),
                counts=counts,
                replicas=len({r["replica"] for r in results.values()}),
                completed_at=entry["completed_at"],
            )
        return answer
