import conveyor
from conveyor import errors


def test_native_core_reports_its_codec_libraries():
    info = conveyor.build_info()
    assert "libjpeg-turbo" in info and "spng" in info


def test_error_hierarchy():
    assert issubclass(errors.DecodeError, errors.ConveyorError)
    assert issubclass(errors.DecodeError, ValueError)
    assert issubclass(errors.AnnotationError, errors.ConveyorError)
    assert issubclass(errors.AnnotationError, ValueError)


def test_unknown_attribute_raises_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        conveyor.nope  # noqa: B018
