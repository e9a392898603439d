"""Synthetic people and organisations for the emulator's exports: made-up
names, numbers in the +48 500.. range, e-mails at example.com and PESELs that
fail the checksum on purpose, so that no fixture is anyone's personal data."""

from __future__ import annotations

import random
import uuid
from typing import Any

__all__ = ["ContactFactory"]

_MAX_LINKS = 3  # at most 3 addresses, and as many linked contacts in a flat file
_PESEL_WEIGHTS = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)


class ContactFactory:
    """Synthetic people and organisations in the export's wire form, the same
    for the same seed. Names are from a short made-up list, numbers in the
    +48 500.. range, e-mails at example.com; PESELs are 11 digits that fail
    the checksum on purpose."""

    _FIRST = ("Adam", "Ewa", "Piotr", "Zofia", "Marek", "Hanna", "Tomasz", "Alicja")
    _LAST = ("Testowy", "Przykładowa", "Próbny", "Wzorcowa", "Fikcyjny", "Zmyślona")
    _ORGS = ("Demo", "Przykład", "Test-Bud", "Wzór", "Fikcja")
    _CITIES = ("Łódź", "Kraków", "Gdańsk", "Poznań", "Wrocław")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _rng(self, kind: str) -> random.Random:
        return random.Random(f"{self.seed}:{kind}")

    @staticmethod
    def _uuid(rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def _contacts(self, rng: random.Random, record: dict[str, Any], i: int) -> None:
        for n in range(1, 4):
            if n == 1 or rng.random() < 0.4:
                prefix, middle = rng.randint(500, 799), rng.randint(100, 999)
                record[f"phone{n}"] = f"+48 {prefix} {middle} {i % 1000:03d}"
                record[f"phone{n}Name"] = ("komórka", "praca", "dom")[n - 1]
            if n == 1 or rng.random() < 0.3:
                record[f"email{n}"] = f"kontakt{i}.{n}@example.com"
                record[f"email{n}Name"] = ("główny", "praca", "prywatny")[n - 1]

    def _addresses(self, rng: random.Random) -> list[dict[str, Any]]:
        result = []
        for n in range(rng.randint(0, _MAX_LINKS)):
            result.append(
                {
                    "name": ("siedziba", "korespondencyjny", "inny")[n],
                    "street": f"ul. Przykładowa {rng.randint(1, 99)}",
                    "city": rng.choice(self._CITIES),
                    "postcode": f"{rng.randint(10, 99)}-{rng.randint(100, 999)}",
                    "building_no": str(rng.randint(1, 120)),
                    "local_no": str(rng.randint(1, 40)) if rng.random() < 0.5 else None,
                    "voivodeship": "łódzkie",
                    "country": "Polska",
                    "district": None,
                }
            )
        return result

    def _supervisors(self, rng: random.Random) -> list[dict[str, Any]]:
        return [
            {"user": self._uuid(rng), "role": "manager" if n == 0 else "watcher"}
            for n in range(rng.randint(0, 2))
        ]

    def organisations(self, count: int) -> list[dict[str, Any]]:
        rng = self._rng("organisations")
        result = []
        for i in range(count):
            record: dict[str, Any] = {
                "uuid": self._uuid(rng),
                "name": f"{rng.choice(self._ORGS)} {i} sp. z o.o.",
                "description": "Organizacja testowa" if rng.random() < 0.5 else None,
                "nip": f"{rng.randint(100, 999)}{rng.randint(1000000, 9999999)}",
                "regon": f"{rng.randint(100000000, 999999999)}",
                "registry": rng.choice(("KRS", "CEIDG", "REGON")),
                "addresses": self._addresses(rng),
                "people": [self._uuid(rng) for _ in range(rng.randint(0, 2))],
                "supervisors": self._supervisors(rng),
            }
            self._contacts(rng, record, i)
            result.append(record)
        return result

    def people(self, count: int) -> list[dict[str, Any]]:
        rng = self._rng("people")
        orgs = [o["uuid"] for o in self.organisations(5)]
        result = []
        for i in range(count):
            digits = f"{rng.randint(0, 9999999999):010d}"
            weighted = sum(int(d) * w for d, w in zip(digits, _PESEL_WEIGHTS, strict=True))
            wrong_check = ((10 - weighted % 10) % 10 + 1) % 10  # never a valid PESEL
            record: dict[str, Any] = {
                "uuid": self._uuid(rng),
                "firstName": rng.choice(self._FIRST),
                "middleName": rng.choice(self._FIRST) if rng.random() < 0.2 else None,
                "lastName": rng.choice(self._LAST),
                "pesel": f"{digits}{wrong_check}",
                "description": 'Kontakt testowy; "cytat", przecinek' if i % 7 == 0 else None,
                "idDocType": "dowód osobisty" if rng.random() < 0.5 else None,
                "idDocNumber": f"ABC{rng.randint(100000, 999999)}" if rng.random() < 0.5 else None,
                "idDocIssuer": None,
                "addresses": self._addresses(rng),
                "organisations": rng.sample(orgs, rng.randint(0, 2)),
                "supervisors": self._supervisors(rng),
            }
            self._contacts(rng, record, i)
            result.append(record)
        return result
