"""mediasoup's server-side object model in Python, driving the real C++ worker.

    worker = await media.create_worker()
    router = await worker.create_router(media_codecs=[...])
    transport = await router.create_webrtc_transport(listen_infos=[{"protocol": "udp", "ip": "127.0.0.1"}])

Names are mediasoup's in snake_case; RTP parameters and capabilities keep
mediasoup's JSON (camelCase) shape so they pass unchanged to clients.
"""

from media.worker import Worker, create_worker

__all__ = ["Worker", "create_worker"]
