"""The log answers' models, the envelope's success code and the driver log's choice."""

from __future__ import annotations

import json

from rayref.emr.log_models import (
    RayLogAccessAnswer,
    RayLogListAnswer,
    RayLogObject,
    driver_log_path,
)
from rayref.emr.secrets import MASK

URL = "https://ss-ray.oss-cn-hangzhou.aliyuncs.com/a/b.log?OSSAccessKeyId=x&Expires=1&Signature=s"


def test_a_list_answer_reads_every_documented_key() -> None:
    answer = RayLogListAnswer.model_validate_json(
        json.dumps(
            {
                "requestId": "r-1",
                "code": "1000000",
                "message": "ok",
                "data": {
                    "bucketName": "ss-ray",
                    "prefix": "w-1/ray/logs/rj-1/",
                    "marker": "",
                    "maxKeys": 2,
                    "delimiter": "",
                    "isTruncated": True,
                    "nextMarker": "w-1/ray/logs/rj-1/a/b.log",
                    "objectList": [
                        {
                            "name": "b.log",
                            "path": "w-1/ray/logs/rj-1/a/b.log",
                            "size": 12,
                            "isDir": False,
                            "timeModified": 1_700_000_000_000,
                        }
                    ],
                },
            }
        )
    )
    assert answer.succeeded
    assert answer.data is not None
    assert answer.data.is_truncated is True
    assert answer.data.next_marker == "w-1/ray/logs/rj-1/a/b.log"
    item = answer.data.object_list[0]
    assert (item.size, item.is_dir) == (12, False)
    assert item.time_modified is not None and item.time_modified.year == 2023


def test_only_the_string_1000000_is_success_and_a_number_reads_as_it() -> None:
    assert RayLogListAnswer.model_validate({"code": 1000000}).succeeded
    assert not RayLogListAnswer.model_validate({"code": "1000001"}).succeeded
    assert not RayLogListAnswer.model_validate({}).succeeded


def test_the_access_url_never_shows_in_repr_or_dump() -> None:
    answer = RayLogAccessAnswer.model_validate({"code": "1000000", "data": {"accessUrl": URL}})
    assert answer.data is not None and answer.data.access_url is not None
    assert answer.data.access_url.get_secret_value() == URL
    for shown in (repr(answer), str(answer), answer.model_dump_json(), str(answer.model_dump())):
        assert "Signature" not in shown and "oss-cn-hangzhou" not in shown
    assert answer.model_dump(by_alias=True)["data"]["accessUrl"] == MASK


def _obj(path: str, modified: int | None = None, *, is_dir: bool = False) -> RayLogObject:
    return RayLogObject.model_validate(
        {"name": path.rsplit("/", 1)[-1], "path": path, "timeModified": modified, "isDir": is_dir}
    )


def test_the_driver_log_is_found_by_file_name_the_newest_attempt_first() -> None:
    objects = [
        _obj("w/ray/logs/rj-1/attempt-1/rj-1_driver.log", 1000),
        _obj("w/ray/logs/rj-1/attempt-2/rj-1_driver.log", 2000),
        _obj("w/ray/logs/rj-1/attempt-2/worker-0.log", 3000),
        _obj("w/ray/logs/rj-1/attempt-3/rj-10_driver.log", 4000),
    ]
    assert driver_log_path(objects, "rj-1") == "w/ray/logs/rj-1/attempt-2/rj-1_driver.log"
    assert driver_log_path(list(reversed(objects)), "rj-1") == objects[1].path


def test_no_driver_log_is_none_and_a_folder_of_that_name_is_not_one() -> None:
    assert driver_log_path([], "rj-1") is None
    assert driver_log_path([_obj("w/rj-1_driver.log", 5, is_dir=True)], "rj-1") is None
    assert driver_log_path([_obj("w/rj-1_driver.log.1", 5)], "rj-1") is None


def test_without_times_the_greatest_path_wins_whatever_the_order() -> None:
    objects = [_obj("p/1/rj-1_driver.log"), _obj("p/2/rj-1_driver.log")]
    assert driver_log_path(objects, "rj-1") == "p/2/rj-1_driver.log"
    assert driver_log_path(objects[::-1], "rj-1") == "p/2/rj-1_driver.log"
