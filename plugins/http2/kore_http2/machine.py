"""The h2 state machine as this server uses it.

Two behaviours of ``h2.connection.H2Connection`` are changed, both to turn
what h2 treats as a connection error into the stream error RFC 9113 asks for:

* SETTINGS_MAX_CONCURRENT_STREAMS: h2 answers a stream over the limit with
  GOAWAY (TooManyStreamsError).  Here h2 is told the limit is unbounded and
  the connection refuses the extra stream with RST_STREAM(REFUSED_STREAM)
  itself (section 5.1.2), while the SETTINGS frame still advertises the
  configured value.
* content-length versus DATA: h2 raises InvalidBodyLengthError, a
  connection error; the connection checks the length itself and resets only
  that stream with PROTOCOL_ERROR (section 8.1.1).

Both overrides touch h2 internals (``_begin_new_stream``,
``_track_content_length``) that are stable across h2 4.x, the range the
plugin's pyproject allows.
"""

import h2.config
import h2.connection
import h2.settings
import h2.stream
from h2.settings import SettingCodes

UNBOUNDED = 2 ** 31 - 1


class _Settings(h2.settings.Settings):
    """Local settings whose MAX_CONCURRENT_STREAMS h2 never enforces."""

    @property
    def max_concurrent_streams(self):
        return UNBOUNDED

    @max_concurrent_streams.setter
    def max_concurrent_streams(self, value):
        self[SettingCodes.MAX_CONCURRENT_STREAMS] = value


class _Stream(h2.stream.H2Stream):
    def _track_content_length(self, length, end_stream):
        # counted only: the server compares it with content-length per stream
        self._actual_content_length += length


class Machine(h2.connection.H2Connection):
    def _begin_new_stream(self, stream_id, allowed_ids):
        s = super()._begin_new_stream(stream_id, allowed_ids)
        s.__class__ = _Stream
        return s


def machine(settings):
    """A server-side h2 connection with the configured local settings."""
    config = h2.config.H2Configuration(
        client_side=False, header_encoding=None,
        # response headers are built lower-case and clean by the stream
        validate_outbound_headers=False, normalize_outbound_headers=False)
    m = Machine(config=config)
    m.local_settings = _Settings(client=False, initial_values={
        SettingCodes.MAX_CONCURRENT_STREAMS: settings.max_streams,
        SettingCodes.INITIAL_WINDOW_SIZE: settings.window,
        SettingCodes.MAX_FRAME_SIZE: settings.frame_size,
        SettingCodes.MAX_HEADER_LIST_SIZE: settings.header_list,
        SettingCodes.ENABLE_CONNECT_PROTOCOL: 0,
    })
    # the settings above are current at once (not after the peer's ACK)
    m.decoder.max_header_list_size = settings.header_list
    m.max_inbound_frame_size = settings.frame_size
    return m
