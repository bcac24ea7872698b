"""The email of a one-time sign-in link to the self-service space, in French, as bytes to send (signed
as it goes out, like every email: Workers.send_mail)."""

from __future__ import annotations

import datetime as dt
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from . import mime


def link_email(sender: str, to: str, finess: str, url: str, minutes: int, now: dt.datetime) -> tuple[str, bytes]:
    """(envelope sender, message) of the link `url` for the officine `finess`, sent to its register address."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Votre lien de connexion à l'espace « Mes livraisons »"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=mime.sending_domain(sender))  # on the sending domain, as render's
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "Bonjour,\n\n"
        f"Une connexion à l'espace « Mes livraisons » a été demandée pour l'officine FINESS {finess}.\n"
        "Pour consulter les livraisons de vaccins prévues pour votre officine, ouvrez ce lien :\n\n"
        f"{url}\n\n"
        f"Il est valable {minutes} minutes et ne sert qu'une fois. Si vous n'avez rien demandé, ignorez ce "
        "message : sans ce lien, personne ne peut se connecter à votre place.\n\n"
        "Ceci est un message automatique : merci de ne pas y répondre.\n")
    return parseaddr(sender)[1], message.as_bytes(policy=policy.SMTP)
