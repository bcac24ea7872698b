"""What a console password must be (OWASP ASVS V2.1): long enough, not common, not guessable.

"Common" and "guessable" are zxcvbn's (Dropbox's estimator, with its lists of the most used
passwords, names and keyboard patterns): a password it guesses in under 10^8 tries is refused.
"""

from __future__ import annotations

from . import ServiceError

SHORTEST_PASSWORD, LONGEST_PASSWORD = 12, 128
GUESSES_LOG10 = 8  # zxcvbn's score 3: "safely unguessable" against an online attack, barely offline
# Words a guesser of this console would try first.
CONTEXT = ["vialflow", "vaccination", "vaccin", "covid", "console", "officine", "pharmacie"]


class WeakPassword(ServiceError):
    """A password that would be found too soon; the message says why, in French."""

    status = 400


def check_password(password: str, account: str) -> None:
    """Refuse a password under 12 characters or over 128, of one repeated character, or that zxcvbn
    guesses in under 10^8 tries (common passwords, the account's name, keyboard walks, dates)."""
    from zxcvbn import zxcvbn

    if len(password) < SHORTEST_PASSWORD:
        raise WeakPassword(f"Le mot de passe doit avoir au moins {SHORTEST_PASSWORD} caractères.")
    if len(password) > LONGEST_PASSWORD:
        raise WeakPassword(f"Le mot de passe a au plus {LONGEST_PASSWORD} caractères.")
    if len(set(password)) == 1:
        raise WeakPassword("Le mot de passe ne peut pas être un seul caractère répété.")
    if zxcvbn(password, user_inputs=[account, *CONTEXT], max_length=LONGEST_PASSWORD)["guesses_log10"] < GUESSES_LOG10:
        raise WeakPassword("Ce mot de passe est trop courant ou trop facile à deviner (mot du dictionnaire, suite "
                           "de clavier, nom du compte, date) : choisissez-en un plus long, fait de plusieurs mots.")
