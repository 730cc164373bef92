"""ChatOrder: one chat's events in arrival order, other chats side by side."""

from __future__ import annotations

import asyncio

from adapters.ordering import ChatOrder


async def test_one_chat_in_arrival_order_others_alongside() -> None:
    order = ChatOrder()
    done: list[str] = []
    gate = asyncio.Event()

    async def event(chat: str, name: str, slow: bool) -> None:
        async with order.hold(chat):
            if slow:
                await gate.wait()  # the first event of chat "a" stalls; "a"'s later events must wait for it
            done.append(name)

    tasks = [
        asyncio.create_task(event("a", "a1", slow=True)),
        asyncio.create_task(event("a", "a2", slow=False)),
        asyncio.create_task(event("b", "b1", slow=False)),
        asyncio.create_task(event("a", "a3", slow=False)),
    ]
    await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert done == ["b1"]  # chat b is not held up by chat a
    gate.set()
    await asyncio.gather(*tasks)
    assert done == ["b1", "a1", "a2", "a3"]
    assert not order._locks  # idle chats leave nothing behind
