from tests.factories import World


def test_a_session_goes_from_baseline_to_recovery(world: World) -> None:
    session = world.session(state="recovery")
    assert session["status"] == "recovery"
    assert session["baseline"]["systolic"] == 124
