package main

// rulesYAML is a routing table file for the contract test of
// ROUTING_RULES_FILE (the parser's own tests, with the same table, are in
// shared/appeal/rulesfile).
const rulesYAML = `
defaultDepartment: triage-desk
rules:
  - category: land
    department: natural-resources
    counties:
      anji: anji-natural-resources
  - category: tax
    department: tax
`
