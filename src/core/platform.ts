// A chat platform is data here: 'slack', 'teams', 'console' or any later one. Core and app
// never list them; each platform is one folder under adapters/ (see README, "Adding a platform").

/** A chat platform's name, as the policy writes it (`slack:` under a person or a channel). */
export type PlatformId = string;
