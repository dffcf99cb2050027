"""The built-in suite's Contacts, Messages and Notes templates, and those that read in one app and write
in another."""

from __future__ import annotations

import random
import zlib

from worker.eval import layout as at
from worker.eval.phone import CONTACTS_PROVIDER, SMS_PROVIDER, EvalPhone
from worker.eval.template import Category, Params, Template, act, stable_choice

CONTACTS, MESSAGES, NOTES = "com.android.contacts", "com.android.messaging", "com.phonefleet.notes"
FIRST = ["Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Edsger", "Frances"]
LAST = ["Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson", "Dijkstra", "Allen"]
MESSAGES_TEXT = ["See you at 7", "Running late", "Call me back", "On my way", "Dinner is ready",
                 "Happy birthday", "Meeting moved to 3", "Thanks for the help"]  # fmt: skip
TITLES = ["Groceries", "Ideas", "Trip", "Books", "Gifts", "Chores", "Recipes", "Plans"]
BODIES = ["milk and eggs", "call the plumber", "pack the charger", "read Dune", "buy flowers",
          "water the plants", "bake bread", "book the hotel"]  # fmt: skip
INBOX = ["Your code is 4411", "The parcel is at the door", "Lunch at noon tomorrow", "Bring the blue folder"]


def digits(number: str) -> str:
    return "".join(ch for ch in number if ch.isdigit())[-10:]


def number(rng: random.Random) -> str:
    return f"555{rng.randrange(1000, 10000)}"


def person(rng: random.Random) -> dict[str, str]:
    return {"name": f"{rng.choice(FIRST)} {rng.choice(LAST)}"}


def number_for(p: Params) -> dict[str, str]:
    """A seeded contact's number, made from its name (the instruction names only the person)."""
    return {"number": f"555{1000 + zlib.crc32(p['name'].encode()) % 9000}"}


async def _seed_contact(phone: EvalPhone, params: Params) -> None:
    await phone.add_contact(params["name"], params["number"])


async def _sent(phone: EvalPhone, to: str, body: str) -> float:
    """1 when a message with ``body`` went to ``to`` (digits compared), 0.5 when it went there with another text."""
    sent = await phone.sms("sent")
    best = 0.0
    for m in sent:
        if digits(m.get("address", "")) == digits(to):
            best = max(best, 1.0 if m.get("body", "").strip() == body.strip() else 0.5)
    return best


async def _note(phone: EvalPhone, title: str, body: str) -> float:
    notes = await phone.notes()
    if title not in notes:
        return 0.0
    return 1.0 if notes[title].strip() == body.strip() else 0.5


async def _contact(phone: EvalPhone, name: str, num: str) -> float:
    for c in await phone.contacts():
        if c.get("display_name") == name:
            return 1.0 if digits(c.get("number", "")) == digits(num) else 0.5
    return 0.0


def _write_note(title: str, body: str) -> list[str]:
    return [act.launch("Notes"), act.tap(at.NEW_NOTE), act.tap(at.NOTE_TITLE), act.type(title),
            act.tap(at.NOTE_BODY), act.type(body), act.tap(at.NOTE_SAVE)]  # fmt: skip


def _send_to_number(to: str, body: str) -> list[str]:
    return [act.launch("Messages"), act.tap(at.START_CHAT), act.tap(at.RECIPIENT), act.type(to),
            act.tap(at.COMPOSE), act.type(body), act.tap(at.SEND)]  # fmt: skip


def _add_contact(name: str, num: str) -> list[str]:
    return [act.launch("Contacts"), act.tap(at.CREATE_CONTACT), act.tap(at.CONTACT_NAME), act.type(name),
            act.tap(at.CONTACT_PHONE), act.type(num), act.tap(at.CONTACT_SAVE)]  # fmt: skip


async def _nothing(phone: EvalPhone, params: Params) -> None:
    return None


def add_contact() -> Template:
    async def check(phone: EvalPhone, p: Params) -> float:
        return await _contact(phone, p["name"], p["number"])

    def generate(rng: random.Random) -> dict[str, str]:
        return {**person(rng), "number": number(rng)}

    return Template("add_contact", "Add a contact named {name} with phone number {number}", Category.MULTI_STEP,
                    (CONTACTS_PROVIDER, CONTACTS), generate, _nothing, check,
                    lambda p: [*_add_contact(p["name"], p["number"]), act.finish("Saved.")])  # fmt: skip


def delete_contact() -> Template:
    async def check(phone: EvalPhone, p: Params) -> float:
        return float(not any(c.get("display_name") == p["name"] for c in await phone.contacts()))

    return Template("delete_contact", "Delete the contact {name}", Category.MULTI_STEP, (CONTACTS_PROVIDER, CONTACTS),
                    person, _seed_contact, check,
                    lambda p: [act.launch("Contacts"), act.tap(at.FIRST_CONTACT), act.tap(at.CONTACT_DELETE),
                               act.finish("Deleted.")], derive=number_for)  # fmt: skip


def send_to_number() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {"message": rng.choice(MESSAGES_TEXT), "number": number(rng)}

    async def check(phone: EvalPhone, p: Params) -> float:
        return await _sent(phone, p["number"], p["message"])

    return Template("send_sms_number", "Send the message '{message}' to {number}", Category.MULTI_STEP,
                    (SMS_PROVIDER, MESSAGES), generate, _nothing, check,
                    lambda p: [*_send_to_number(p["number"], p["message"]), act.finish("Sent.")])  # fmt: skip


def send_to_contact() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {**person(rng), "message": rng.choice(MESSAGES_TEXT)}

    async def check(phone: EvalPhone, p: Params) -> float:
        return await _sent(phone, p["number"], p["message"])

    def solve(p: Params) -> list[str]:
        return [act.launch("Messages"), act.tap(at.START_CHAT), act.tap(at.RECIPIENT), act.type(p["name"].split()[0]),
                act.tap(at.FIRST_SUGGESTION), act.tap(at.COMPOSE), act.type(p["message"]), act.tap(at.SEND),
                act.finish("Sent.")]  # fmt: skip

    # The number is the seeded contact's: the instruction names only the person.
    return Template("send_sms_contact", "Send '{message}' to {name}", Category.MULTI_STEP,
                    (CONTACTS_PROVIDER, SMS_PROVIDER, MESSAGES), generate, _seed_contact, check, solve,
                    derive=number_for)  # fmt: skip


def create_note() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {"title": rng.choice(TITLES), "body": rng.choice(BODIES)}

    async def setup(phone: EvalPhone, p: Params) -> None:
        await phone.sh("rm -f /sdcard/Notes/*")

    async def check(phone: EvalPhone, p: Params) -> float:
        return await _note(phone, p["title"], p["body"])

    return Template("create_note", "Create a note titled '{title}' with the text '{body}'", Category.MULTI_STEP,
                    (NOTES,), generate, setup, check,
                    lambda p: [*_write_note(p["title"], p["body"]), act.finish("Saved.")])  # fmt: skip


def delete_note() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {"title": rng.choice(TITLES)}

    async def setup(phone: EvalPhone, p: Params) -> None:
        await phone.sh("rm -f /sdcard/Notes/*")
        await phone.write(f"/sdcard/Notes/{p['title']}.txt", p["body"])

    async def check(phone: EvalPhone, p: Params) -> float:
        return float(p["title"] not in await phone.notes())

    return Template("delete_note", "Delete the note titled '{title}'", Category.MULTI_STEP, (NOTES,), generate,
                    setup, check, lambda p: [act.launch("Notes"), act.tap(at.FIRST_NOTE), act.tap(at.NOTE_DELETE),
                                             act.finish("Deleted.")],
                    derive=lambda p: {"body": stable_choice(p["title"], BODIES)})  # fmt: skip


def contact_number_to_sms() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {**person(rng), "to": number(rng)}

    async def check(phone: EvalPhone, p: Params) -> float:
        sent = [m for m in await phone.sms("sent") if digits(m.get("address", "")) == digits(p["to"])]
        return max((1.0 if digits(p["number"]) in digits(m.get("body", "")) else 0.5 for m in sent), default=0.0)

    def solve(p: Params) -> list[str]:
        return [act.launch("Contacts"), act.tap(at.FIRST_CONTACT), *_send_to_number(p["to"], p["number"]),
                act.finish("Sent.")]  # fmt: skip

    return Template("contact_number_to_sms", "Look up {name}'s phone number in Contacts and text it to {to}",
                    Category.TWO_APPS, (CONTACTS_PROVIDER, CONTACTS, SMS_PROVIDER, MESSAGES), generate,
                    _seed_contact, check, solve, derive=number_for)  # fmt: skip


def sms_to_note() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {"sender": number(rng), "title": rng.choice(TITLES)}

    async def setup(phone: EvalPhone, p: Params) -> None:
        await phone.sh("rm -f /sdcard/Notes/*")
        await phone.add_sms(p["sender"], p["text"])

    async def check(phone: EvalPhone, p: Params) -> float:
        return await _note(phone, p["title"], p["text"])

    def solve(p: Params) -> list[str]:
        return [act.launch("Messages"), act.tap(at.FIRST_CONVERSATION), *_write_note(p["title"], p["text"]),
                act.finish("Saved.")]  # fmt: skip

    # "text" is the message the phone holds: the instruction does not say it.
    return Template("sms_to_note", "Save the latest message from {sender} as a note titled '{title}'",
                    Category.TWO_APPS, (SMS_PROVIDER, MESSAGES, NOTES), generate, setup, check, solve,
                    derive=lambda p: {"text": stable_choice(p["sender"], INBOX)})  # fmt: skip


def sms_sender_to_contact() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {**person(rng), "text": rng.choice(INBOX)}

    async def setup(phone: EvalPhone, p: Params) -> None:
        await phone.add_sms(p["number"], p["text"])

    async def check(phone: EvalPhone, p: Params) -> float:
        return await _contact(phone, p["name"], p["number"])

    def solve(p: Params) -> list[str]:
        return [act.launch("Messages"), act.tap(at.FIRST_CONVERSATION), *_add_contact(p["name"], p["number"]),
                act.finish("Saved.")]  # fmt: skip

    return Template("sms_sender_to_contact", "Add whoever sent me '{text}' to my contacts as {name}",
                    Category.TWO_APPS, (SMS_PROVIDER, MESSAGES, CONTACTS_PROVIDER, CONTACTS), generate, setup,
                    check, solve, derive=lambda p: {"number": number_for(p)["number"]})  # fmt: skip


def contact_number_to_note() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {**person(rng), "title": rng.choice(TITLES)}

    async def setup(phone: EvalPhone, p: Params) -> None:
        await phone.sh("rm -f /sdcard/Notes/*")
        await _seed_contact(phone, p)

    async def check(phone: EvalPhone, p: Params) -> float:
        notes = await phone.notes()
        if p["title"] not in notes:
            return 0.0
        return 1.0 if digits(p["number"]) in digits(notes[p["title"]]) else 0.5

    def solve(p: Params) -> list[str]:
        return [act.launch("Contacts"), act.tap(at.FIRST_CONTACT), *_write_note(p["title"], p["number"]),
                act.finish("Saved.")]  # fmt: skip

    return Template("contact_number_to_note", "Write {name}'s phone number in a note titled '{title}'",
                    Category.TWO_APPS, (CONTACTS_PROVIDER, CONTACTS, NOTES), generate, setup, check, solve,
                    derive=number_for)  # fmt: skip


def note_to_sms() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {"title": rng.choice(TITLES), "to": number(rng)}

    async def setup(phone: EvalPhone, p: Params) -> None:
        await phone.sh("rm -f /sdcard/Notes/*")
        await phone.write(f"/sdcard/Notes/{p['title']}.txt", p["body"])

    async def check(phone: EvalPhone, p: Params) -> float:
        return await _sent(phone, p["to"], p["body"])

    def solve(p: Params) -> list[str]:
        return [act.launch("Notes"), act.tap(at.FIRST_NOTE), *_send_to_number(p["to"], p["body"]), act.finish("Sent.")]

    return Template("note_to_sms", "Send the text of my note '{title}' to {to}", Category.TWO_APPS,
                    (NOTES, SMS_PROVIDER, MESSAGES), generate, setup, check, solve,
                    derive=lambda p: {"body": stable_choice(p["title"], BODIES)})  # fmt: skip


def untitled_note() -> Template:
    def generate(rng: random.Random) -> dict[str, str]:
        return {"body": rng.choice(BODIES)}

    async def setup(phone: EvalPhone, p: Params) -> None:
        await phone.sh("rm -f /sdcard/Notes/*")

    async def check(phone: EvalPhone, p: Params) -> float:
        notes = await phone.notes()
        return float(any(body.strip() == p["body"] for body in notes.values()))

    def solve(p: Params) -> list[str]:
        return [act.launch("Notes"), act.tap(at.NEW_NOTE), act.tap(at.NOTE_BODY), act.type(p["body"]),
                act.tap(at.NOTE_SAVE), act.finish("Saved.")]  # fmt: skip

    return Template("untitled_note", "Jot down '{body}' in my notes", Category.MULTI_STEP, (NOTES,), generate,
                    setup, check, solve)  # fmt: skip


TEMPLATES = [
    add_contact(), delete_contact(), send_to_number(), send_to_contact(), create_note(), delete_note(),
    untitled_note(), contact_number_to_sms(), sms_to_note(), sms_sender_to_contact(), contact_number_to_note(),
    note_to_sms(),
]  # fmt: skip
