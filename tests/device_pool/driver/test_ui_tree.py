"""The view-tree reading the live view and the agent use on protected screens, and the password
check that keeps typed secrets out of a task's steps: it fails safe."""

from __future__ import annotations

from device_pool.driver.ui_tree import element_at, focused_is_password, ui_elements, ui_nodes

DUMP = """<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation="0">
<node text="" resource-id="" class="android.widget.FrameLayout" bounds="[0,0][1000,2000]" clickable="false">
  <node text="Sign in" resource-id="app:id/title" class="android.widget.TextView" bounds="[100,100][900,200]"/>
  <node text="demo" resource-id="app:id/username" class="android.widget.EditText" clickable="true"
        focused="false" password="false" bounds="[100,300][900,400]"/>
  <node text="••••" resource-id="app:id/password" class="android.widget.EditText" clickable="true"
        focused="true" password="true" bounds="[100,500][900,600]"/>
  <node text="" content-desc="" resource-id="app:id/login_button" class="android.widget.Button"
        clickable="true" bounds="[100,700][900,800]"/>
  <node text="" resource-id="" class="android.view.View" bounds="[0,0][0,0]"/>
</node></hierarchy>"""


def test_elements_are_the_labelled_or_actionable_nodes() -> None:
    found = ui_elements(DUMP)
    assert [(e.label, e.kind) for e in found] == [
        ("Sign in", "TextView"), ("demo", "EditText"), ("••••", "EditText"), ("login button", "Button"),
    ]  # fmt: skip
    password = found[2]
    assert password.password and password.focused and password.editable
    assert password.as_json((1000, 2000))["bounds"] == [0.1, 0.25, 0.9, 0.3]


def test_a_password_field_in_focus_and_an_unreadable_tree_both_count_as_secret() -> None:
    assert focused_is_password(DUMP)
    assert not focused_is_password(
        DUMP.replace('focused="true" password="true"', 'focused="false" password="true"')
    )
    assert focused_is_password("ERROR: could not get idle state")  # not XML: never store the text
    assert ui_elements("not xml") == []


def test_a_point_names_the_smallest_labelled_element_under_it() -> None:
    # Inside the button: its own label, not the (unlabelled) frame around it.
    assert element_at(DUMP, 500, 750).label == "login button"  # type: ignore[union-attr]
    assert element_at(DUMP, 100, 100).label == "Sign in"  # type: ignore[union-attr]  # edges: left/top in
    assert element_at(DUMP, 900, 150) is None  # right edge out, and nothing labelled around it
    assert element_at(DUMP, 500, 250) is None
    assert element_at("not xml", 500, 750) is None


def test_nodes_carry_ids_that_survive_a_change_of_text_and_differ_between_elements() -> None:
    nodes = ui_nodes(DUMP)
    assert [n.kind for n in nodes] == ["TextView", "EditText", "EditText", "Button"]
    assert len({n.id for n in nodes}) == 4
    typed = ui_nodes(DUMP.replace('text="demo"', 'text="grace"'))
    assert [n.id for n in typed] == [n.id for n in nodes]  # the field keeps its id while typed in
    moved = ui_nodes(DUMP.replace("[100,700][900,800]", "[100,900][900,1000]"))
    assert moved[3].id != nodes[3].id  # another place on the screen: another element
    button = nodes[3].as_json()
    assert button == {"id": nodes[3].id, "kind": "Button", "resource_id": "app:id/login_button",
                      "bounds": [100, 700, 900, 800], "clickable": True}  # fmt: skip
    assert nodes[3].center == (500, 750)
    assert ui_nodes("not xml") == []


def test_a_switch_says_whether_it_is_checked_and_twins_get_distinct_ids() -> None:
    switch = '<node text="ON" class="android.widget.Switch" checkable="true" checked="true" clickable="true" bounds="[0,0][10,10]"/>'
    dump = f"<hierarchy>{switch}{switch}</hierarchy>"
    first, second = ui_nodes(dump)
    assert first.as_json()["checked"] is True and first.checkable
    assert second.id == f"{first.id}-2"
