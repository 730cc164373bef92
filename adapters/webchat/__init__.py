"""The built-in web chat: a browser page and a JSON API on the gateway, no token needed."""

from adapters.webchat.inbound import ChatRequest, envelope_from_chat
from adapters.webchat.outbound import REPLY_CHANNEL, WebchatSender, reply_key
from adapters.webchat.replies import ReplyWaiter

__all__ = ["REPLY_CHANNEL", "ChatRequest", "ReplyWaiter", "WebchatSender", "envelope_from_chat", "reply_key"]
