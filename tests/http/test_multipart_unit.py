"""kore_http.multipart in process: framing, limits and their statuses, file
parts on disk with bounded memory, filenames."""

import hashlib
import os
import tracemalloc

import pytest

from kore_http import forms
from kore_http.multipart import FormError, HttpFile, NotMultipart, parse_form

CT = "multipart/form-data; boundary=XX"


def part(name, data, filename=None, ctype=None, extra=b""):
    cd = b'form-data; name="%s"' % name.encode()
    if filename is not None:
        cd += b'; filename="%s"' % (filename.encode() if isinstance(filename, str) else filename)
    head = b"Content-Disposition: " + cd + b"\r\n"
    if ctype:
        head += b"Content-Type: " + ctype.encode() + b"\r\n"
    return b"--XX\r\n" + head + extra + b"\r\n" + data + b"\r\n"


def body(*parts):
    return b"".join(parts) + b"--XX--\r\n"


def files_data(files):
    return [(f.name, f.filename, f.content_type, f.data) for f in files]


def status_of(data, **kw):
    with pytest.raises(FormError) as ei:
        parse_form(data, CT, **kw)
    assert isinstance(ei.value, ValueError)      # what populate_multi catches
    return ei.value.status


def test_fields_and_files_in_order():
    b = body(part("title", b"hello"), part("upload", b"file-content", "a.txt", "text/plain"),
             part("title", b"second"), part("blob", b"\x00\xff", "b.bin"))
    fields, files = parse_form(b, CT)
    assert fields == [("title", "hello"), ("title", "second")]
    assert files_data(files) == [("upload", "a.txt", "text/plain", b"file-content"),
                                 ("blob", "b.bin", "application/octet-stream", b"\x00\xff")]


def test_same_result_for_every_way_of_feeding():
    b = b"preamble\r\n" + body(part("a", b"1\r\n2"), part("f", b"x" * 300, "f"),
                               part("b", b"")) + b"epilogue"
    want = parse_form(b, CT)
    want = (want[0], files_data(want[1]))
    for cut in range(len(b) + 1):
        got = parse_form([b[:cut], b[cut:]], CT)
        assert (got[0], files_data(got[1])) == want, cut
    got = parse_form(iter([b[i:i + 1] for i in range(len(b))]), CT)
    assert (got[0], files_data(got[1])) == want
    for size in (1, 7, 64):
        import io
        got = parse_form(io.BytesIO(b), CT, read_size=size)
        assert (got[0], files_data(got[1])) == want
    assert want[0] == [("a", "1\r\n2"), ("b", "")]


def test_boundary_text_inside_data_is_data():
    # only CRLF "--XX" delimits: "--XX" inside a line, at the start of a
    # part's data or as a shorter prefix is content (the old split on bare
    # "--XX" cut these parts apart)
    data = b"--XX at the start, mid--XX-line, \r\n--X short, \r--XX, \n--XX"
    fields, files = parse_form(body(part("a", data), part("f", data, "f.txt")), CT)
    assert fields == [("a", data.decode())]
    assert files[0].data == data


def test_delimiter_followed_by_other_bytes_is_400():
    assert status_of(b"--XX\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                     b"x\r\n--XXY\r\n--XX--\r\n") == 400


def test_lf_only_body_is_400():
    lf = body(part("a", b"1")).replace(b"\r\n", b"\n")
    assert status_of(lf) == 400
    # bare LF in a part's headers too
    assert status_of(b"--XX\r\nContent-Disposition: form-data; name=a\n\r\n1\r\n--XX--\r\n") == 400


def test_missing_final_boundary_is_400():
    assert status_of(b"".join([part("a", b"1")])) == 400
    assert status_of(part("a", b"1") + b"--XX") == 400
    assert status_of(b"--XX\r\nContent-Disposition: form-data; name=a\r\n\r\n1") == 400
    assert status_of(b"") == 400
    assert status_of(b"no boundary at all") == 400


def test_part_header_limits_are_413(tmp_path):
    big = b"X-Pad: " + b"p" * 5000 + b"\r\n"
    assert status_of(body(part("a", b"1", extra=big))) == 413
    # an endless header line is refused before it ends
    assert status_of(b"--XX\r\nContent-Disposition: form-data; name=a" + b"a" * 10000) == 413
    many = b"".join(b"X-%d: 1\r\n" % i for i in range(8))
    assert status_of(body(part("a", b"1", extra=many))) == 413
    assert parse_form(body(part("a", b"1", extra=many)), CT, max_part_headers=9)[0] == [("a", "1")]
    assert status_of(body(part("a", b"1", extra=b"X-A: " + b"p" * 90 + b"\r\n")),
                     max_part_header=64) == 413


def test_too_many_parts_is_413_and_removes_written_files(tmp_path):
    b = body(part("f", b"x" * 1000, "f.txt"), *[part("a%d" % i, b"1") for i in range(20)])
    assert status_of(b, max_parts=10, disk_path=str(tmp_path), file_memory_max=0) == 413
    assert os.listdir(tmp_path) == []
    assert len(parse_form(b, CT, max_parts=21)[0]) == 20


def test_field_limits_are_413():
    assert status_of(body(part("a", b"x" * 101)), max_field_size=100) == 413
    assert parse_form(body(part("a", b"x" * 100)), CT, max_field_size=100)[0] == [("a", "x" * 100)]
    b = body(*[part("a%d" % i, b"x" * 60) for i in range(5)])
    assert status_of(b, max_field_size=100, max_fields_size=250) == 413
    # file parts do not count against the field limits
    assert parse_form(body(part("f", b"x" * 1000, "f")), CT, max_field_size=100)[1][0].size == 1000


def test_malformed_parts_are_400():
    assert status_of(b"--XX\r\nContent-Type: text/plain\r\n\r\n1\r\n--XX--\r\n") == 400
    assert status_of(b"--XX\r\nContent-Disposition: attachment; name=a\r\n\r\n1\r\n"
                     b"--XX--\r\n") == 400
    assert status_of(b"--XX\r\nNo colon here\r\n\r\n1\r\n--XX--\r\n") == 400


def test_part_without_name_is_skipped():
    b = body(b"--XX\r\nContent-Disposition: form-data; filename=\"x\"\r\n\r\nzzz\r\n",
             part("a", b"1"))
    assert parse_form(b, CT) == ([("a", "1")], [])


def test_content_type_checks():
    with pytest.raises(NotMultipart):
        parse_form(body(part("a", b"1")), "application/x-www-form-urlencoded")
    with pytest.raises(NotMultipart):
        parse_form(b"", None)
    for ct in ("multipart/form-data", "multipart/form-data; boundary=",
               "multipart/form-data; boundary=" + "b" * 201):
        with pytest.raises(FormError) as ei:
            parse_form(b"", ct)
        assert ei.value.status == 400
    q = parse_form(body(part("a", b"1")), 'Multipart/Form-Data; charset=utf-8; boundary="XX"')
    assert q[0] == [("a", "1")]


def test_unicode_filenames_and_names():
    utf8 = "r\u00e9sum\u00e9 \u20ac.txt".encode()
    b = body(part("f1", b"1", utf8),                                    # browsers: raw UTF-8
             b"--XX\r\nContent-Disposition: form-data; name=\"f2\"; filename=\"fallback.txt\"; "
             b"filename*=UTF-8''%E2%82%AC%20rates.txt\r\n\r\n2\r\n",       # RFC 8187
             b"--XX\r\nContent-Disposition: form-data; name=\"f3\"; "
             b"filename*=iso-8859-1'en'%E9t%E9.txt\r\n\r\n3\r\n",
             part("f4", b"4", b"a%22quoted%22.txt"),                    # HTML5 quoting
             part("f5", b"5", b"caf\xe9.txt"),                          # latin-1 bytes
             part("f6", b"6", b"C:\\Users\\me\\x.txt"),                 # a legacy full path
             part("\u00e9t\u00e9", "\u00e9".encode()),                 # UTF-8 field name
             b"--XX\r\nContent-Disposition: form-data; name=\"f7\"; filename=\"ok.txt\"; "
             b"filename*=bogus-charset''%E9\r\n\r\n7\r\n")
    fields, files = parse_form(b, CT)
    assert [f.filename for f in files] == ["r\u00e9sum\u00e9 \u20ac.txt", "\u20ac rates.txt",
                                           "\u00e9t\u00e9.txt", 'a"quoted".txt',
                                           "caf\u00e9.txt", "x.txt", "ok.txt"]
    assert fields == [("\u00e9t\u00e9", "\u00e9")]


def test_http_file_api(tmp_path):
    data = bytes(range(256)) * 10
    fields, files = parse_form(body(part("f", data, "f.bin")), CT,
                               disk_path=str(tmp_path / "up"), file_memory_max=1000)
    f = files[0]
    assert f.path and os.path.dirname(f.path) == str(tmp_path / "up")
    assert os.path.getsize(f.path) == f.size == len(data)
    got = b""
    sizes = []
    while True:
        n, chunk = f.read(1024)
        if n == 0:
            break
        sizes.append(n)
        got += chunk
    assert got == data and sizes == [1024, 1024, 512]
    with pytest.raises(RuntimeError):
        f.read(1025)
    with pytest.raises(TypeError):
        f.read(-1)
    assert "2560 bytes" in repr(f)
    path = f.path
    f.close()
    f.close()
    assert not os.path.exists(path) and f.path is None
    with pytest.raises(ValueError):
        f.read(1)


def test_small_files_stay_in_memory_and_zero_threshold_goes_to_disk(tmp_path):
    b = body(part("f", b"abc", "f"), part("e", b"", "e"))
    files = parse_form(b, CT, disk_path=str(tmp_path), file_memory_max=3)[1]
    assert [f.path for f in files] == [None, None]
    files = parse_form(b, CT, disk_path=str(tmp_path), file_memory_max=0)[1]
    assert files[0].path is not None and files[0].data == b"abc"
    assert files[1].path is None and files[1].data == b""        # empty: nothing to write
    del files
    import gc
    gc.collect()
    assert os.listdir(tmp_path) == []                           # collected objects clean up


def test_forms_wrapper_keeps_the_old_call():
    fields, files = forms.parse_multipart(body(part("a", b"1"), part("f", b"2", "f")), CT)
    assert fields == [("a", "1")] and isinstance(files[0], forms.HttpFile)
    assert forms.HttpFile is HttpFile
    assert HttpFile("n", "f", "text/plain", b"xyz").read(2) == (2, b"xy")


def test_50mb_file_part_streams_with_bounded_memory(tmp_path):
    size = 50 << 20
    src = tmp_path / "body"
    block = bytes(range(256)) * 256                     # 64 KiB, with CR and LF bytes
    h = hashlib.sha256()
    with open(src, "wb") as out:
        out.write(part("title", b"big")[:-2] + b"\r\n")
        out.write(b"--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"big.bin\"\r\n"
                  b"Content-Type: application/octet-stream\r\n\r\n")
        for _ in range(size // len(block)):
            out.write(block)
            h.update(block)
        out.write(b"\r\n--XX--\r\n")
    tracemalloc.start()
    try:
        with open(src, "rb") as fo:
            fields, files = parse_form(fo, CT, disk_path=str(tmp_path / "up"),
                                       file_memory_max=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, "peak %d bytes" % peak
    assert fields == [("title", "big")]
    f = files[0]
    assert f.size == size and os.path.getsize(f.path) == size
    h2 = hashlib.sha256()
    with open(f.path, "rb") as fi:
        for chunk in iter(lambda: fi.read(1 << 20), b""):
            h2.update(chunk)
    assert h2.digest() == h.digest()
    f.close()
