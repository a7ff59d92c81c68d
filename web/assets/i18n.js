// offhook widget: the words it shows, in English, German and French, chosen by
// the snippet's data-lang, else the page's <html lang>, else the browser's
// language (English when none of these is known). Exposes `OffhookI18n`.
(function () {
  "use strict";

  const STRINGS = {
    en: {
      call: "Call",
      connecting: "Connecting…",
      ringing: "Ringing… {time}",
      inCall: "In call {time}",
      ended: "Call ended.",
      remoteHangup: "The other side hung up.",
      hangup: "Hang up",
      mute: "Mute",
      unmute: "Unmute",
      keypad: "Keypad",
      key: "Key {key}",
      closed: "Closed now.",
      opensAt: "Opens {when} (your time).",
      hours: "Opening hours ({zone}): {hours}",
      disabled: "Calls through this button are switched off.",
      "unknown-icon": "This call button is not set up (unknown id).",
      "origin-not-allowed": "Calls are not allowed from this page.",
      unavailable: "Calls are unavailable right now. Please try again later.",
      "rate-limited": "Too many calls right now. Please try again in {seconds} s.",
      busy: "The line is busy.",
      "no-answer": "No answer.",
      "not-found": "The number cannot be reached.",
      "all-lines-busy": "All lines are busy. Please try again later.",
      unsupported: "Your browser's audio is not supported.",
      microphone: "Microphone access is needed to call.",
      "insecure-page": "Calls need this page served over HTTPS (the browser offers no microphone here).",
      "connection-lost": "The connection to the call server was lost.",
      "no-media": "No audio path to the call server: your network blocks it. The call has ended.",
      "server-unreachable": "Cannot reach the call server.",
      failed: "The call failed.",
      qualityGood: "Network: good",
      qualityPoor: "Poor network: the call may break up.",
      qualityFigures: "round trip {rtt} ms, jitter {jitter} ms, loss {loss} %",
    },
    de: {
      call: "Anrufen",
      connecting: "Verbinde…",
      ringing: "Es klingelt… {time}",
      inCall: "Im Gespräch {time}",
      ended: "Anruf beendet.",
      remoteHangup: "Die Gegenseite hat aufgelegt.",
      hangup: "Auflegen",
      mute: "Stumm",
      unmute: "Ton an",
      keypad: "Tastenfeld",
      key: "Taste {key}",
      closed: "Zurzeit geschlossen.",
      opensAt: "Öffnet {when} (Ihre Zeit).",
      hours: "Öffnungszeiten ({zone}): {hours}",
      disabled: "Anrufe über diese Schaltfläche sind abgeschaltet.",
      "unknown-icon": "Diese Anruf-Schaltfläche ist nicht eingerichtet (unbekannte Kennung).",
      "origin-not-allowed": "Anrufe sind von dieser Seite aus nicht erlaubt.",
      unavailable: "Anrufe sind gerade nicht möglich. Bitte versuchen Sie es später erneut.",
      "rate-limited": "Gerade zu viele Anrufe. Bitte in {seconds} s erneut versuchen.",
      busy: "Die Leitung ist besetzt.",
      "no-answer": "Niemand nimmt ab.",
      "not-found": "Die Nummer ist nicht erreichbar.",
      "all-lines-busy": "Alle Leitungen sind belegt. Bitte versuchen Sie es später erneut.",
      unsupported: "Das Audio Ihres Browsers wird nicht unterstützt.",
      microphone: "Zum Anrufen wird das Mikrofon gebraucht.",
      "insecure-page": "Anrufe brauchen diese Seite über HTTPS (hier gibt der Browser kein Mikrofon frei).",
      "connection-lost": "Die Verbindung zum Anrufserver ist abgebrochen.",
      "no-media": "Kein Audioweg zum Anrufserver: Ihr Netzwerk blockiert ihn. Der Anruf wurde beendet.",
      "server-unreachable": "Der Anrufserver ist nicht erreichbar.",
      failed: "Der Anruf ist fehlgeschlagen.",
      qualityGood: "Netz: gut",
      qualityPoor: "Schlechtes Netz: Der Anruf kann abgehackt klingen.",
      qualityFigures: "Umlaufzeit {rtt} ms, Jitter {jitter} ms, Verlust {loss} %",
    },
    fr: {
      call: "Appeler",
      connecting: "Connexion…",
      ringing: "Ça sonne… {time}",
      inCall: "En communication {time}",
      ended: "Appel terminé.",
      remoteHangup: "Votre correspondant a raccroché.",
      hangup: "Raccrocher",
      mute: "Couper le micro",
      unmute: "Rétablir le micro",
      keypad: "Clavier",
      key: "Touche {key}",
      closed: "Fermé pour le moment.",
      opensAt: "Ouvre {when} (votre heure).",
      hours: "Horaires ({zone}) : {hours}",
      disabled: "Les appels par ce bouton sont désactivés.",
      "unknown-icon": "Ce bouton d'appel n'est pas configuré (identifiant inconnu).",
      "origin-not-allowed": "Les appels ne sont pas autorisés depuis cette page.",
      unavailable: "Les appels sont indisponibles pour le moment. Veuillez réessayer plus tard.",
      "rate-limited": "Trop d'appels en ce moment. Réessayez dans {seconds} s.",
      busy: "La ligne est occupée.",
      "no-answer": "Pas de réponse.",
      "not-found": "Le numéro est injoignable.",
      "all-lines-busy": "Toutes les lignes sont occupées. Veuillez réessayer plus tard.",
      unsupported: "L'audio de votre navigateur n'est pas pris en charge.",
      microphone: "L'accès au micro est nécessaire pour appeler.",
      "insecure-page": "Les appels exigent cette page en HTTPS (le navigateur ne donne pas le micro ici).",
      "connection-lost": "La connexion au serveur d'appel a été perdue.",
      "no-media": "Aucun chemin audio vers le serveur d'appel : votre réseau le bloque. L'appel est terminé.",
      "server-unreachable": "Le serveur d'appel est injoignable.",
      failed: "L'appel a échoué.",
      qualityGood: "Réseau : bon",
      qualityPoor: "Réseau faible : l'appel peut être haché.",
      qualityFigures: "aller-retour {rtt} ms, gigue {jitter} ms, perte {loss} %",
    },
  };

  // The first supported language among `wanted` (tags like "de-CH"), else "en".
  function pick(...wanted) {
    for (const tag of wanted) {
      const primary = String(tag || "").toLowerCase().split(/[-_]/)[0];
      if (STRINGS[primary]) return primary;
    }
    return "en";
  }

  // The text of `key` in `lang` with {name} filled from `values`.
  function text(lang, key, values) {
    const template = (STRINGS[lang] && STRINGS[lang][key]) || STRINGS.en[key] || key;
    return template.replace(/\{(\w+)\}/g, (_, name) => (values && name in values ? String(values[name]) : ""));
  }

  // Weekly hours (Monday first, ranges of ["HH:MM", "HH:MM"]) in words:
  // "Mon–Fri 09:00–17:00; Sat 10:00–14:00", days named in `lang`.
  function weekly(lang, days) {
    const name = new Intl.DateTimeFormat(lang, { weekday: "short", timeZone: "UTC" });
    // 2024-01-01 was a Monday.
    const day = (i) => name.format(new Date(Date.UTC(2024, 0, 1 + i)));
    const key = (ranges) => ranges.map((r) => r.join("–")).join(", ");
    const parts = [];
    for (let i = 0; i < 7; ) {
      if (!days[i] || days[i].length === 0) {
        i += 1;
        continue;
      }
      let j = i;
      while (j + 1 < 7 && days[j + 1] && key(days[j + 1]) === key(days[i])) j += 1;
      parts.push((j > i ? day(i) + "–" + day(j) : day(i)) + " " + key(days[i]));
      i = j + 1;
    }
    return parts.join("; ");
  }

  // When an instant (Unix ms) is, in the visitor's time zone and words.
  function when(lang, ms) {
    return new Intl.DateTimeFormat(lang, { weekday: "long", hour: "2-digit", minute: "2-digit" }).format(new Date(ms));
  }

  window.OffhookI18n = { languages: Object.keys(STRINGS), pick, text, weekly, when };
})();
