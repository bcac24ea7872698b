"""Every code of the pipeline and its French words, once: a line's status and reason, an effecteur's kind,
an injection, a delivery's status, an email's state, a step of a run, a person's action, a role.

Each code is an enum member that is its own string (what the files, the database and the JSON carry)
and knows two labels: `short`, for a table, a list or a chart, and `long`, for a sentence (the email,
an explanation, a page that has room). Every page, email, file and terminal view asks here.
"""

from __future__ import annotations

from enum import StrEnum


class Coded(StrEnum):
    """A code with its short and long French labels."""

    short: str
    long: str

    def __new__(cls, code: str, short: str, long: str | None = None):
        member = str.__new__(cls, code)
        member._value_ = code
        member.short = short
        member.long = long or short
        return member

    @classmethod
    def of(cls, code: object):
        """The member whose code is `code`, or None."""
        return cls._value2member_map_.get(code) if isinstance(code, str) else None

    @classmethod
    def labelled(cls, code: object, long: bool = False) -> str:
        """The label of `code`, or `code` itself as text when it is none of this enum's (a stored value
        from a later version of the program is shown rather than hidden)."""
        member = cls.of(code)
        if member is None:
            return "" if code is None else str(code)
        return member.long if long else member.short

    @property
    def sentence(self) -> str:
        """The long label as a sentence of its own: capital first, full stop last."""
        return self.long[:1].upper() + self.long[1:] + "."


class Status(Coded):
    """A line's status in allocations.csv."""

    SERVED = "served", "servie", "servie en totalité"
    PARTIAL = "partial", "servie en partie"
    REFUSED = "refused", "refusée"


class Reason(Coded):
    """Why a line got what it got (allocations.csv, R1–R7, R11, R12), in the contract's order: `ok`,
    the three cuts (cap, unit, supply), then the outright refusals in the order they are checked."""

    OK = "ok", "servie en totalité", "la ligne est servie en totalité"
    CAP = ("cap", "plafond atteint",
           "plafond par professionnel atteint : la quantité demandée dépasse le nombre de flacons ouverts à la "
           "commande pour ce vaccin et cette injection, compte tenu des lignes déjà commandées")
    UNIT = ("unit", "arrondi à la boîte entière",
            "arrondi à la boîte entière : ce vaccin n'est livré que par boîtes complètes, la quantité a été ramenée "
            "au nombre de boîtes entières")
    SUPPLY = ("supply", "volume disponible épuisé",
              "volume disponible épuisé (premier arrivé, premier servi) : les commandes sont servies dans l'ordre de "
              "leur saisie, dans la limite des doses disponibles")
    CANCELLED = "cancelled", "commande annulée", "la commande a été annulée lors d'une réattribution des vaccins"
    WINDOW = ("window", "hors période de commande",
              "la commande a été saisie en dehors de la période d'ouverture du portail de commande")
    UNKNOWN_PHARMACY = ("unknown_pharmacy", "officine inconnue",
                        "l'officine n'a pas été reconnue (numéro FINESS inconnu)")
    ZONE = ("zone", "hors zone de la session",
            "l'officine se situe en dehors de la zone géographique concernée par cette session")
    ELIGIBILITY = ("eligibility", "vaccin non ouvert à cet effecteur",
                   "ce vaccin n'est pas ouvert à la commande pour ce type d'effecteur ou pour cette injection lors "
                   "de cette session")
    UNKNOWN_PROFESSIONAL = ("unknown_professional", "professionnel inconnu",
                            "le professionnel n'a pas été reconnu : numéro RPPS absent, inconnu ou enregistré pour "
                            "un autre type d'effecteur")
    NOT_ATTACHED = ("not_attached", "professionnel non rattaché à l'officine",
                    "le professionnel n'est pas rattaché à l'officine qui a passé la commande : il doit commander "
                    "par son officine de rattachement")


class Kind(Coded):
    """An effecteur's kind: who a line is for (R2)."""

    PHARMACIEN = "pharmacien", "pharmacien", "pharmacien (l'officine)"
    MEDECIN = "medecin", "médecin"
    MEDECIN_TRAVAIL = "medecin_travail", "médecin du travail"
    SAGE_FEMME = "sage_femme", "sage-femme"
    INFIRMIER = "infirmier", "infirmiers rattachés", "infirmiers rattachés à l'officine"


class Injection(Coded):
    FIRST = "first", "1re injection", "première injection"
    SECOND = "second", "2e injection", "deuxième injection"


class Delivery(Coded):
    """A delivery's status in deliveries.csv (R8)."""

    SCHEDULED = "scheduled", "programmée", "livraison programmée"
    PENDING = "pending", "en attente", "date communiquée ultérieurement"


class EmailState(Coded):
    """An outbox row's state (R9): pending → claimed → sending → sent; or retry, failed, unknown."""

    PENDING = "pending", "à envoyer", "en attente d'envoi"
    CLAIMED = "claimed", "pris en charge", "pris en charge par un processus d'envoi"
    SENDING = "sending", "en cours d'envoi", "remis au serveur d'envoi, sa réponse est attendue"
    RETRY = "retry", "nouvel essai prévu", "refusé pour un temps par le serveur : un nouvel essai est prévu"
    SENT = "sent", "envoyé", "accepté par le serveur d'envoi"
    FAILED = "failed", "échec", "refusé pour de bon par le serveur d'envoi : non envoyé"
    UNKNOWN = ("unknown", "issue inconnue",
               "connexion perdue pendant l'envoi : peut-être reçu, jamais renvoyé sans décision d'un opérateur")

    @property
    def settled(self) -> bool:
        """Sent, failed or unknown: nothing more will happen to the row by itself."""
        return self in SETTLED


SETTLED = (EmailState.SENT, EmailState.FAILED, EmailState.UNKNOWN)


class RunStep(Coded):
    """A step of a run, in the order the pipeline takes them (the step chain: pipeline/services/chain.py)."""

    CLOSE = "close", "clôture", "clôture de la session : ses commandes sont figées (R1)"
    ALLOCATE = "allocate", "allocation", "allocation des flacons : plafonds, boîtes, stock (R1 à R7)"
    SCHEDULE = "schedule", "planification des livraisons", "planification des livraisons par les dépôts (R8)"
    PREPARE = "prepare_confirmations", "préparation des emails", "un email préparé par destinataire (R9)"
    SEND = "send", "envoi des emails", "envoi des emails de confirmation (R9)"
    EXPORT = "export", "export des fichiers", "fichiers de la version écrits dans le dossier d'export"


class SessionState(Coded):
    OPEN = "open", "ouverte", "ouverte aux commandes"
    CLOSED = "closed", "close", "close : plus aucune commande acceptée"


class Role(Coded):
    """A console account's role: support reads, operator also acts, admin also sees accounts and the log."""

    SUPPORT = "support", "support", "conseiller du support"
    OPERATOR = "operator", "opérateur", "opérateur (réallocations, renvois d'emails)"
    ADMIN = "admin", "administrateur", "administrateur (comptes et journal)"
    # The self-service space: a person who receives the emails, reading their own deliveries only.
    OFFICINE = "officine", "officine", "officine (lien de connexion à usage unique)"
    PHARMACIEN = "pharmacien", "pharmacien", "pharmacien (Pro Santé Connect)"
    PROFESSIONNEL = "professionnel", "professionnel de santé", "professionnel de santé (Pro Santé Connect)"


class Policy(Coded):
    """How a vaccine's supply is shared when the demand exceeds it (R7)."""

    FCFS = "fcfs", "premier arrivé, premier servi"
    FCFS_FILL = ("fcfs_fill", "premier arrivé, premier servi, sans blocage",
                 "premier arrivé, premier servi ; une ligne qui ne tient plus est refusée, une suivante plus petite "
                 "peut encore être servie")
    PRO_RATA = "pro_rata", "au prorata", "au prorata des demandes après plafonds"


class Action(Coded):
    """What a person did, as the `actions` table records it."""

    LOOKUP = "lookup", "consultation d'une officine"
    EXPLAIN = "explain", "explication d'une ligne"
    SEARCH = "search", "recherche par nom"
    MESSAGE = "message", "lecture d'un email"
    OUTBOX = "outbox", "liste des emails"
    PREVIEW = "preview", "aperçu de réallocation"
    REALLOCATE = "reallocate", "réallocation"
    RESEND = "resend", "renvoi d'emails"
    SIGN_IN = "sign_in", "connexion"
    SIGN_OUT = "sign_out", "déconnexion"
    SIGN_IN_REFUSED = "sign_in_refused", "connexion refusée"
    SIGN_IN_LOCKED = "sign_in_locked", "connexions suspendues", "connexions suspendues après trop de refus"
    USER_ADD = "user_add", "compte créé"
    USER_PASSWORD = "user_password", "mot de passe changé"
    USER_DISABLE = "user_disable", "compte désactivé"
    USER_ENABLE = "user_enable", "compte réactivé"
    USER_UNLOCK = "user_unlock", "tentatives effacées", "tentatives de connexion refusées effacées"
    JOURNAL = "journal", "lecture du journal"
    PURGE = "purge", "purge", "purge des données personnelles"
    SELF_VIEW = "self_view", "consultation de son espace", "consultation de ses propres livraisons"
    LINK_REQUEST = "link_request", "lien demandé", "lien de connexion à usage unique demandé"
    LINK_REFUSED = "link_refused", "lien refusé", "lien de connexion invalide, expiré ou déjà utilisé"
    VERIFY = "verify", "vérification d'une version", "vérification d'une version recalculée depuis ses entrées"


VOCABULARY = (Status, Reason, Kind, Injection, Delivery, EmailState, RunStep, SessionState, Role, Policy, Action)
