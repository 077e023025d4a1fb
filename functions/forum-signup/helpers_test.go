package main

import (
	"github.com/qinqing/qinqing/shared/event"
)

func uscCheck(body string) (byte, error) { return event.USCCCheck(body) }
