"""The SDK's media plane: RTP/RTCP over UDP between the client and the node.

Sans-IO cores (no clock, no socket): ``rtp`` (packets, header extensions, abs-capture-time),
``vp8``/``h264``/``payload`` (payload formats), ``publisher_track.PublisherTrack`` (a sent track:
numbering, history, NACK answers, keyframe requests, sender reports), ``assembler.FrameAssembler``
and ``player_track.PlayerTrack`` (a received track: frames, loss, NACK, PLI, receiver reports).
PyAV glue: ``av_codecs`` (encoders, decoder) and ``sources`` (test pattern, tone, media files).
IO shells: ``publisher.MediaPublisher`` and ``player.MediaPlayer`` (with ``udp``), driven by
``sfu.client.Engine``; ``cli`` adds ``sfu publish`` and ``sfu play``.
"""
