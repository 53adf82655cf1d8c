"""Topics, subscriptions, message status and history, dead letters (the messaging service)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, delete, get, post
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter

from cortex.contracts.messages import SendMessage, SendResult
from cortex.contracts.messaging import (
    TOPIC_PATTERN,
    DeadLetter,
    DeadLetterPage,
    DeadLetterRef,
    GetMessage,
    ListDeadLetters,
    ListMessages,
    ListSubscriptions,
    ListTopics,
    MessagePage,
    MessageRecord,
    Replayed,
    Subscription,
    SubscriptionView,
    TopicView,
)
from cortex.gateway.auth import ADMIN, principal_of
from cortex.gateway.body_limits import MESSAGE_BODY_LIMIT
from cortex.gateway.document import problem
from cortex.gateway.state import GatewayDep, IdempotencyKey
from cortex.kernel.messages import payload_from_api, publish_to_topic

Topic = Annotated[
    str,
    PathParameter(
        description="Letters, digits, `-` and `_`, in parts joined by dots",
        # Checked where the topic is used (`publish_to_topic`, the messaging service).
        schema_extra={"pattern": TOPIC_PATTERN},
    ),
]


class TopicBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    topic: str
    """Checked by the messaging service (`TOPIC_PATTERN`, stated in the document)."""


@post(
    "/api/v1/topics/{topic:str}/messages",
    tags=["topics"],
    status_code=202,
    request_max_body_size=MESSAGE_BODY_LIMIT,
    summary="Publish to a topic: every subscribed agent gets the message once",
)
async def publish(
    gw: GatewayDep,
    topic: Topic,
    data: JSONBody[SendMessage],
    request: Request[Any, Any, Any],
) -> SendResult:
    payload = payload_from_api(data.payload, data.content_type)
    principal = principal_of(request)
    msg_id = await publish_to_topic(
        gw.nc.jetstream(),
        gw.subjects,
        topic,
        payload,
        content_type=data.content_type,
        sender=f"api:{principal.name}" if principal else "api",
        extra_headers=data.headers,
    )
    return SendResult(id=msg_id, status="accepted")


@get("/api/v1/topics", tags=["topics"], summary="Topics with subscribers")
async def list_topics(gw: GatewayDep, request: Request[Any, Any, Any]) -> list[TopicView]:
    return await gw.ask("messaging", "topic.list", ListTopics(), list[TopicView], request)


@get(
    "/api/v1/agents/{ref:str}/subscriptions",
    tags=["topics"],
    summary="The topics an agent takes messages from",
)
async def list_subscriptions(
    gw: GatewayDep, ref: FromPath[str], request: Request[Any, Any, Any]
) -> list[SubscriptionView]:
    async with gw.agent_id(ref, request) as agent_id:
        query = ListSubscriptions(agent_id=agent_id)
        return await gw.ask(
            "messaging", "subscription.list", query, list[SubscriptionView], request
        )


@post(
    "/api/v1/agents/{ref:str}/subscriptions",
    tags=["topics"],
    status_code=201,
    summary="Subscribe an agent to a topic",
)
async def subscribe(
    gw: GatewayDep,
    ref: FromPath[str],
    data: JSONBody[TopicBody],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> SubscriptionView:
    async with gw.agent_id(ref, request) as agent_id:
        cmd = Subscription(agent_id=agent_id, topic=data.topic)
        return await gw.ask(
            "messaging",
            "subscription.add",
            cmd,
            SubscriptionView,
            request,
            idempotency_key=idempotency_key,
        )


@delete(
    "/api/v1/agents/{ref:str}/subscriptions/{topic:str}",
    tags=["topics"],
    status_code=204,
    summary="Unsubscribe an agent from a topic",
)
async def unsubscribe(
    gw: GatewayDep,
    ref: FromPath[str],
    topic: Topic,
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> None:
    async with gw.agent_id(ref, request) as agent_id:
        cmd = Subscription(agent_id=agent_id, topic=topic)
        await gw.ask(
            "messaging",
            "subscription.remove",
            cmd,
            object,
            request,
            idempotency_key=idempotency_key,
        )


@get(
    "/api/v1/messages/{msg_id:str}",
    tags=["messages"],
    summary="A message's status: accepted, delivered, acked or dead_lettered",
)
async def get_message(
    gw: GatewayDep, msg_id: FromPath[str], request: Request[Any, Any, Any]
) -> MessageRecord:
    return await gw.ask("messaging", "message.get", GetMessage(msg_id), MessageRecord, request)


@get(
    "/api/v1/agents/{ref:str}/messages",
    tags=["messages"],
    summary="An agent's recent messages, newest first",
)
async def agent_messages(
    gw: GatewayDep,
    ref: FromPath[str],
    request: Request[Any, Any, Any],
    direction: FromQuery[Literal["in", "out", "both"]] = "in",
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    before: FromQuery[str | None] = None,
) -> MessagePage:
    async with gw.agent_id(ref, request) as agent_id:
        query = ListMessages(agent_id=agent_id, direction=direction, limit=limit, before=before)
        return await gw.ask("messaging", "message.list", query, MessagePage, request)


@get(
    "/api/v1/dlq",
    tags=["dead letters"],
    summary="Dead letters, oldest first",
    responses={404: problem(404, "No agent of that id or name (`agent`)")},
)
async def list_dead_letters(
    gw: GatewayDep,
    request: Request[Any, Any, Any],
    agent: Annotated[str | None, QueryParameter(description="Agent id or name")] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    after: Annotated[
        str | None,
        QueryParameter(
            description="The `next` of the previous page: the id of a dead letter this "
            "platform has held; any other id is refused (422)"
        ),
    ] = None,
) -> DeadLetterPage:
    agent_id = (await gw.agent(agent, request)).id if agent else None
    query = ListDeadLetters(agent_id=agent_id, limit=limit, after=after)
    return await gw.ask("messaging", "dlq.list", query, DeadLetterPage, request)


@get(
    "/api/v1/dlq/{msg_id:str}",
    tags=["dead letters"],
    summary="One dead letter with its payload, last error and deliveries",
)
async def get_dead_letter(
    gw: GatewayDep, msg_id: FromPath[str], request: Request[Any, Any, Any]
) -> DeadLetter:
    return await gw.ask("messaging", "dlq.get", DeadLetterRef(msg_id), DeadLetter, request)


@post(
    "/api/v1/dlq/{msg_id:str}/replay",
    tags=["dead letters"],
    status_code=202,
    summary="Deliver a dead letter to its agent again (as a new message)",
)
async def replay_dead_letter(
    gw: GatewayDep,
    msg_id: FromPath[str],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> Replayed:
    return await gw.ask(
        "messaging",
        "dlq.replay",
        DeadLetterRef(msg_id),
        Replayed,
        request,
        idempotency_key=idempotency_key,
    )


@delete(
    "/api/v1/dlq/{msg_id:str}",
    tags=["dead letters"],
    status_code=204,
    summary="Purge a dead letter (admin)",
    opt=ADMIN,
)
async def delete_dead_letter(
    gw: GatewayDep,
    msg_id: FromPath[str],
    request: Request[Any, Any, Any],
    idempotency_key: IdempotencyKey = None,
) -> Response[None]:
    await gw.ask(
        "messaging",
        "dlq.delete",
        DeadLetterRef(msg_id),
        object,
        request,
        idempotency_key=idempotency_key,
    )
    return Response(None, status_code=204)


ROUTES = [
    publish,
    list_topics,
    list_subscriptions,
    subscribe,
    unsubscribe,
    get_message,
    agent_messages,
    list_dead_letters,
    get_dead_letter,
    replay_dead_letter,
    delete_dead_letter,
]
