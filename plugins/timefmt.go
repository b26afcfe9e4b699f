package plugins

import "time"

// AppendTime writes t's date and clock as 2006-01-02T15:04:05.000000Z,
// with sep in place of the T, several times faster than time.AppendFormat,
// which showed in profiles. It is for years 0 to 9999 and ignores t's
// zone: callers convert to UTC and choose what other years become.
func AppendTime(b []byte, t time.Time, sep byte) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = appendDigits(b, y, 4)
	b = appendDigits(append(b, '-'), int(mo), 2)
	b = appendDigits(append(b, '-'), d, 2)
	b = appendDigits(append(b, sep), h, 2)
	b = appendDigits(append(b, ':'), mi, 2)
	b = appendDigits(append(b, ':'), s, 2)
	b = appendDigits(append(b, '.'), t.Nanosecond()/1000, 6)
	return append(b, 'Z')
}

// appendDigits writes v, which is not negative, in n digits.
func appendDigits(b []byte, v, n int) []byte {
	b = append(b, "000000"[:n]...)
	for i := len(b) - 1; v > 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
